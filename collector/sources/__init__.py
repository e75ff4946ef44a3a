"""Sources: one subpackage per device family (client.py for I/O, parse.py pure)."""
