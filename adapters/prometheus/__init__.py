"""The core's metrics as Prometheus series (prometheus-client), one registry per process."""
