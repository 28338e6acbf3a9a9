"""A run's trace and span ids, as W3C Trace Context (https://www.w3.org/TR/trace-context/,
"trace-id" and "parent-id") defines them: 16 and 8 bytes in lowercase hex, never all zero."""

from __future__ import annotations

import re

import pytest

from fraiseql_checks import trace

TRACE_ID = re.compile(r"[0-9a-f]{32}")
SPAN_ID = re.compile(r"[0-9a-f]{16}")


def test_a_runs_ids_are_lowercase_hex_of_the_w3c_sizes_and_new_at_each_run() -> None:
    drawn = [trace.new_ids() for _ in range(2000)]
    for trace_id, span_id in drawn:
        assert TRACE_ID.fullmatch(trace_id) and SPAN_ID.fullmatch(span_id)
    assert len({trace_id for trace_id, _ in drawn}) == len({span_id for _, span_id in drawn}) == len(drawn)


@pytest.mark.parametrize("zero", ["trace", "span"])
def test_an_all_zero_draw_is_never_an_id(monkeypatch: pytest.MonkeyPatch, zero: str) -> None:
    """All-zero ids are invalid: a draw that gives one is not used."""
    # the 192 bits of one draw: the trace id's 128 first, then the span id's 64
    draws = iter([0x1234 if zero == "trace" else 0x1234 << 64, (1 << 128) - 1, (1 << 64) - 1])
    monkeypatch.setattr(trace, "_bits", lambda bits: next(draws))
    trace_id, span_id = trace.new_ids()
    assert trace_id != "0" * 32 and span_id != "0" * 16
    assert TRACE_ID.fullmatch(trace_id) and SPAN_ID.fullmatch(span_id)
