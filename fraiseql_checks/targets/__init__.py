"""What the checks watch: the fixtures' clients (``fraiseql``, ``db``, ``cache``, ``prom``,
``http``), the FraiseQL profiles that name each version's series by role, and the
metrics contract between a target and the dashboards and rules that read it.

``plugin`` declares the fixtures and the ``targets`` config; each client is its own module.
"""
