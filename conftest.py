"""Root conftest, loaded both by pytest (the test suite) and by fraiseql-check (the checks).

It stays light on purpose: fraiseql-check imports it before every run of the
shipped checks, so it holds nothing but what both sides can use.
"""
