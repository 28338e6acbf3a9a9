"""Durations: what people write, and every number that is not a usable duration."""

from __future__ import annotations

import pytest

from fraiseql_checks.durations import MAX_SECONDS, format_duration, parse_duration, positive_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("1m", 60),
        ("1h30m", 5400),
        ("500ms", 0.5),
        ("7d", 604800),
        (" 2m ", 120),
        (15, 15),
        ("1.5", 1.5),
        (0, 0),
        ("0s", 0),
        ("3650d", MAX_SECONDS),
        (MAX_SECONDS, MAX_SECONDS),
    ],
)
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("", "expected a duration like '30s', '1m' or '1h30m', got ''"),
        ("soon", "expected a duration like '30s', '1m' or '1h30m', got 'soon'"),
        ("5 minutes", "expected a duration like '30s', '1m' or '1h30m', got '5 minutes'"),
        ("1x", "expected a duration like '30s', '1m' or '1h30m', got '1x'"),
        (True, "expected a duration like '30s' or '1m', got True"),
        ("-1s", "expected a duration like '30s', '1m' or '1h30m', got '-1s'"),
        (-1, "expected a positive duration, got -1"),
        ("-1", "expected a positive duration, got '-1'"),
        (float("nan"), "expected a finite duration like '30s' or '1m', got nan"),
        (float("inf"), "expected a finite duration like '30s' or '1m', got inf"),
        (float("-inf"), "expected a finite duration like '30s' or '1m', got -inf"),
        ("nan", "expected a finite duration like '30s' or '1m', got 'nan'"),
        ("NaN", "expected a finite duration like '30s' or '1m', got 'NaN'"),
        ("inf", "expected a finite duration like '30s' or '1m', got 'inf'"),
        ("-Infinity", "expected a finite duration like '30s' or '1m', got '-Infinity'"),
        ("1e308", "expected at most 3650d, got '1e308'"),
        (1e308, "expected at most 3650d, got 1e+308"),
        (10**400, "expected at most 3650d, got 1000"),
        (-(10**400), "expected a positive duration, got -1000"),
        ("3651d", "expected at most 3650d, got '3651d'"),
        ("522w", "expected at most 3650d, got '522w'"),
        ("9" * 400 + "s", "expected at most 3650d, got '999"),
    ],
    ids=lambda value: repr(value)[:24],
)
def test_parse_duration_rejects_with_one_line_naming_the_value(bad: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(bad)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("zero", [0, 0.0, "0", "0s", "0ms", -0.0])
def test_positive_duration_refuses_zero(zero: object) -> None:
    assert parse_duration(zero) == 0  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^expected a duration longer than zero, got "):
        positive_duration(zero)  # type: ignore[arg-type]


def test_positive_duration_applies_every_rule_of_parse_duration() -> None:
    assert positive_duration("1h30m") == 5400
    for bad in (float("nan"), "inf", "1e308", -5):
        with pytest.raises(ValueError):
            positive_duration(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(90, "1m30s"), (0.25, "250ms"), (3600, "1h"), (86400 * 7, "1w"), (0, "0s"), (MAX_SECONDS, "521w3d")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_every_accepted_duration_can_be_formatted_back() -> None:
    for text in ("1ms", "59s", "1h30m", "3650d"):
        assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)
