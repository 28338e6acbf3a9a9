"""Grafana dashboards generated from the checks' metadata and FraiseQL's metric names, and pushed to Grafana."""
