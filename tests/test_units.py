"""Small pure pieces: durations, check metadata, masking."""

from __future__ import annotations

import pytest

from fraiseql_checks.config import Masker
from fraiseql_checks.durations import format_duration, parse_duration
from fraiseql_checks.spec import check, make_spec, spec_of


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("1m", 60), ("1h30m", 5400), ("500ms", 0.5), ("7d", 604800), (" 2m ", 120), (15, 15), ("1.5", 1.5)],
)
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "soon", "5 minutes", "-1s", "1x", True])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"), [(90, "1m30s"), (0.25, "250ms"), (3600, "1h"), (86400 * 7, "1w"), (0, "0s")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


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
    with pytest.raises(ValueError, match="interval must be longer than zero"):
        make_spec(interval="0s")


def test_masker_hides_secrets_and_url_passwords() -> None:
    mask = Masker()
    mask.add("tok-123456")
    text = "Bearer tok-123456 at postgresql://app:p%40ss@db:5432/x and redis://:hunter2@cache/0"
    assert mask(text) == "Bearer *** at postgresql://app:***@db:5432/x and redis://:***@cache/0"
    mask.add("ab")  # too short to mask without destroying text
    assert mask("abc") == "abc"
