"""The package's version: one home, read by ``pyproject.toml`` (``dynamic``), the CLI,
the reports, the User-Agent and the watcher's build info."""

__version__ = "0.1.0"
