"""The package's ``__all__`` is exactly what users can import."""

import fraiseql_checks


def test_all_names_are_importable() -> None:
    for name in fraiseql_checks.__all__:
        assert hasattr(fraiseql_checks, name), name


def test_public_names_are_listed() -> None:
    """Every public name is in ``__all__`` (submodules and pytest's rewrite helpers aside)."""
    public = {
        name
        for name, value in vars(fraiseql_checks).items()
        if not name.startswith(("_", "@"))
        and name != "annotations"  # from __future__
        and not getattr(value, "__name__", "").startswith("fraiseql_checks.")
    }
    assert public == set(fraiseql_checks.__all__) - {"__version__"}
