"""fraiseql-checks: observability for FraiseQL written as tests.

The public API: ``check`` and ``fixture`` to write checks, ``alert`` to write an
alert condition (run as a check, compiled to a Prometheus rule), ``record`` to
report a measured value, ``stopwatch`` to time an operation without the time other
checks held the event loop, ``hookimpl`` to write plugins, ``TargetError`` for a
watched service that fails, and the result types.
"""

from __future__ import annotations

from fraiseql_checks._version import __version__
from fraiseql_checks.alerting.alerts import AlertSpec, alert
from fraiseql_checks.core.fixtures import fixture
from fraiseql_checks.errors import TargetError
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.result import Outcome, Result
from fraiseql_checks.spec import CheckSpec, check
from fraiseql_checks.timing import stopwatch
from fraiseql_checks.trace import record

__all__ = [
    "AlertSpec",
    "CheckSpec",
    "Outcome",
    "Result",
    "TargetError",
    "__version__",
    "alert",
    "check",
    "fixture",
    "hookimpl",
    "record",
    "stopwatch",
]
