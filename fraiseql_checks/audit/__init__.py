"""Audit compliance over FraiseQL's audit tables: the query builder, the patterns, the chain.

Checks get all of it through the ``audit`` fixture; this package re-exports what
they may need to import: the filter helpers (``MISSING``, ``Glob``, ``Not``) and
the result types.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fraiseql_checks.audit.chain import ChainBreak, ChainReport, canonical_json, event_hash
    from fraiseql_checks.audit.patterns import Audit, AuditUnsupported, SeqGap, WriteDelay, Writers
    from fraiseql_checks.audit.query import MISSING, AuditQuery, Glob, Not, Peak

# Imported on first use (PEP 562): every run registers the audit plugin, few use it.
_MODULE_OF = {
    "ChainBreak": "chain",
    "ChainReport": "chain",
    "canonical_json": "chain",
    "event_hash": "chain",
    "Audit": "patterns",
    "AuditUnsupported": "patterns",
    "SeqGap": "patterns",
    "WriteDelay": "patterns",
    "Writers": "patterns",
    "MISSING": "query",
    "AuditQuery": "query",
    "Glob": "query",
    "Not": "query",
    "Peak": "query",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"fraiseql_checks.audit.{module}"), name)


__all__ = [
    "MISSING",
    "Audit",
    "AuditQuery",
    "AuditUnsupported",
    "ChainBreak",
    "ChainReport",
    "Glob",
    "Not",
    "Peak",
    "SeqGap",
    "WriteDelay",
    "Writers",
    "canonical_json",
    "event_hash",
]
