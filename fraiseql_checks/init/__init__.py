"""``fraiseql-check init``: the setup wizard (the command in ``plugin``, the rest loaded when it runs)."""
