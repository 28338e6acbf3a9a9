"""Watch mode: scheduler, check states, the Prometheus exporter, reload and shutdown."""
