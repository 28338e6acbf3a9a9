"""Audit compliance over FraiseQL's audit tables: the query builder, the patterns, the chain.

Checks get all of it through the ``audit`` fixture; this package re-exports what
they may need to import: the filter helpers (``MISSING``, ``Glob``, ``Not``) and
the result types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fraiseql_checks._lazy import lazy_names

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


__getattr__ = lazy_names(__name__, {name: f"fraiseql_checks.audit.{module}" for name, module in _MODULE_OF.items()})


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
