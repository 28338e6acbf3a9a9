"""The watcher's management API (``/api/v1/``) and the routes it shares with the status
page: declared once per route (``endpoint.Endpoint``), served by Starlette inside the
watcher's own HTTP server, described by the OpenAPI document built from the same
declarations."""
