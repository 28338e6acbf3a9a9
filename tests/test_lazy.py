"""Names imported on first use (``fraiseql_checks._lazy``): the package's, audit's, the API's."""

from __future__ import annotations

import subprocess
import sys

import pytest

_PROBE = """
import sys
import fraiseql_checks.audit as audit
assert "fraiseql_checks.audit.query" not in sys.modules
glob = audit.Glob
assert "fraiseql_checks.audit.query" in sys.modules
assert vars(audit)["Glob"] is glob  # kept: the next use is a plain attribute
print("ok")
"""


def test_a_name_is_imported_when_first_asked_and_then_kept() -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize("module", ["fraiseql_checks", "fraiseql_checks.audit", "fraiseql_checks.api.web"])
def test_an_unknown_name_is_an_attribute_error_naming_the_module(module: str) -> None:
    imported = __import__(module, fromlist=["_"])
    with pytest.raises(AttributeError, match=f"module '{module}' has no attribute 'no_such_name'"):
        getattr(imported, "no_such_name")  # noqa: B009
