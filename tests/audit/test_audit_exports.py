"""What checks may import from ``fraiseql_checks.audit`` is what ``__all__`` says."""

from __future__ import annotations

import fraiseql_checks.audit as audit


def test_audit_all_is_importable() -> None:
    assert sorted(audit.__all__) == sorted(
        [
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
    )
    for name in audit.__all__:
        assert getattr(audit, name) is not None, name


def test_event_hash_is_v1s_algorithm() -> None:
    """sha256("<previous or GENESIS>:<sorted compact JSON>"), as v1's verification helper computes it."""
    assert audit.canonical_json({"b": [1, {"d": None, "c": "x"}], "a": True}) == '{"a":true,"b":[1,{"c":"x","d":null}]}'
    assert audit.event_hash(None, {}) == "eabc6b0960b1418521af2fc92a2f27f80ddbd73ccfc9a30d5d7d613090aef731"
    assert audit.event_hash("abc", {"a": 1}) == "ef0de54164874029c52365bbae141dd30772a872e5598d4e6b634fc49eccf818"
