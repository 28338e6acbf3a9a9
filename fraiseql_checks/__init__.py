"""fraiseql-checks: observability for FraiseQL written as tests.

The public API: ``check`` and ``fixture`` to write checks, ``alert`` to write an
alert condition (run as a check, compiled to a Prometheus rule), ``record`` to
report a measured value, ``stopwatch`` to time an operation without the time other
checks held the event loop, ``hookimpl`` to write plugins, ``TargetError`` for a
watched service that fails, and the result types.

The names are imported when first used (PEP 562), so that ``fraiseql-check
--version`` and a plugin that needs one name do not pay for all of them.
"""

from __future__ import annotations

import typing as _typing

from fraiseql_checks import _lazy
from fraiseql_checks._version import __version__

if _typing.TYPE_CHECKING:
    from fraiseql_checks.alerting.alerts import AlertSpec, alert
    from fraiseql_checks.core.fixtures import fixture
    from fraiseql_checks.errors import TargetError
    from fraiseql_checks.hookspec import hookimpl
    from fraiseql_checks.result import Outcome, Result
    from fraiseql_checks.spec import CheckSpec, check
    from fraiseql_checks.timing import stopwatch
    from fraiseql_checks.trace import record

#: Where each public name lives.
_HOMES = {
    "AlertSpec": "fraiseql_checks.alerting.alerts",
    "alert": "fraiseql_checks.alerting.alerts",
    "fixture": "fraiseql_checks.core.fixtures",
    "TargetError": "fraiseql_checks.errors",
    "hookimpl": "fraiseql_checks.hookspec",
    "Outcome": "fraiseql_checks.result",
    "Result": "fraiseql_checks.result",
    "CheckSpec": "fraiseql_checks.spec",
    "check": "fraiseql_checks.spec",
    "stopwatch": "fraiseql_checks.timing",
    "record": "fraiseql_checks.trace",
}

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


__getattr__ = _lazy.lazy_names(__name__, _HOMES)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
