"""Notifications: the ``notify`` section (receivers, routes, the runbook base URL)."""
