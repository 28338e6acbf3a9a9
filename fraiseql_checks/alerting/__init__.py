"""Alerting: ``@alert`` checks (a PromQL condition run as a check), the Prometheus rules
generated from every check's metadata, and the Alertmanager config routing them."""
