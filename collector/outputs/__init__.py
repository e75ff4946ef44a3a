"""What users read: export, analysis, the report and the Grafana dashboards."""
