"""The core runner: collect check files, resolve fixtures, run checks with timeouts in
their own threads, capture their output, watch for leaks; a ``Session`` ties them up.

Everything else (targets, reports, generators, watch mode, stores) plugs into it
through the hooks of ``fraiseql_checks.hookspec``.
"""
