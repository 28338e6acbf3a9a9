"""The status page: server-rendered HTML at ``/``, badges, and a Statuspage-style summary."""
