"""Audit compliance over FraiseQL's audit tables: the query builder, the patterns, the chain.

Checks get all of it through the ``audit`` fixture; this package re-exports what
they may need to import: the filter helpers (``MISSING``, ``Glob``, ``Not``) and
the result types.
"""

from __future__ import annotations

from fraiseql_checks.audit.chain import ChainBreak, ChainReport, canonical_json, event_hash
from fraiseql_checks.audit.patterns import Audit, AuditUnsupported, SeqGap, WriteDelay, Writers
from fraiseql_checks.audit.query import MISSING, AuditQuery, Glob, Not, Peak

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
