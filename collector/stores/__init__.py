"""Stores: InfluxDB (v2 API through influxdb-client, v1 /write) and the embedded SQLite store."""
