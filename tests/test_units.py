"""Small pure pieces: check metadata (durations are in test_durations.py, masking in test_masking.py)."""

from __future__ import annotations

import pytest

from fraiseql_checks.spec import check, make_spec, spec_of


def test_check_decorator_validates_and_keeps_the_function() -> None:
    @check(interval="30s", severity="critical", labels={"team": "db"}, tags="db")
    def check_x() -> None:
        """Doc."""

    spec = spec_of(check_x)
    assert spec is not None
    assert (spec.interval, spec.severity, dict(spec.labels), spec.tags) == (30.0, "critical", {"team": "db"}, ("db",))
    with pytest.raises(ValueError, match="label name '__x'"):
        make_spec(labels={"__x": "1"})
    with pytest.raises(ValueError, match="failure_threshold must be a whole number"):
        make_spec(failure_threshold=0)
    with pytest.raises(ValueError, match=r"^interval: expected a duration longer than zero, got '0s'$"):
        make_spec(interval="0s")


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"interval": float("nan")}, "interval: expected a finite duration like '30s' or '1m', got nan"),
        ({"interval": "inf"}, "interval: expected a finite duration like '30s' or '1m', got 'inf'"),
        ({"timeout": "1e308"}, "timeout: expected at most 3650d, got '1e308'"),
        ({"timeout": float("-inf")}, "timeout: expected a finite duration like '30s' or '1m', got -inf"),
        ({"interval": "soon"}, "interval: expected a duration like '30s', '1m' or '1h30m', got 'soon'"),
        ({"failures_within": (3, float("nan"))}, "failures_within window: expected a finite duration"),
        ({"failures_within": (3, "4000d")}, "failures_within window: expected at most 3650d, got '4000d'"),
        ({"failures_within": (3, 0)}, "failures_within window: expected a duration longer than zero, got 0"),
    ],
)
def test_check_durations_are_finite_positive_and_bounded(metadata: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        make_spec(**metadata)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)
