"""Energy and climate history collector for FRITZ!Box, Thinknx and Overkiz into InfluxDB."""

__version__ = "0.1.0"
