"""Badges, sparklines and the 90-day bar are valid SVG with accessible names."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from fraiseql_checks.status import svg
from fraiseql_checks.status.uptime import Day

NS = "{http://www.w3.org/2000/svg}"


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{NS}text")]


@pytest.mark.parametrize(
    ("state", "silenced", "value", "colour"),
    [
        ("passing", False, "passing", svg.GREEN),
        ("failing", False, "failing", svg.RED),
        ("flapping", False, "flapping", svg.ORANGE),
        ("unknown", False, "unknown", svg.GREY),
        ("failing", True, "failing, silenced", svg.GREY),
    ],
)
def test_a_state_badge_says_the_state_in_its_colour(state: str, silenced: bool, value: str, colour: str) -> None:
    root = ET.fromstring(svg.state_badge("check_<pool> & co", state, silenced))
    assert root.tag == f"{NS}svg" and root.get("role") == "img"
    assert root.get("aria-label") == f"check_<pool> & co: {value}"
    assert root.find(f"{NS}title") is not None and root.find(f"{NS}title").text == f"check_<pool> & co: {value}"  # type: ignore[union-attr]
    assert texts(root) == ["check_<pool> & co", "check_<pool> & co", value, value]
    fills = [r.get("fill") for r in root.iter(f"{NS}rect")]
    assert svg.LABEL in fills and colour in fills
    width = int(root.get("width") or 0)
    assert width > svg.text_width("check_<pool> & co") + svg.text_width(value)


@pytest.mark.parametrize(
    ("value", "shown", "colour"),
    [
        (712 / 720, "98.89%", svg.YELLOW),
        (1.0, "100%", svg.GREEN),
        (None, "no data", svg.GREY),
        (0.5, "50.00%", svg.RED),
    ],
)
def test_an_uptime_badge_says_the_window_and_the_percentage(value: float | None, shown: str, colour: str) -> None:
    root = ET.fromstring(svg.uptime_badge("check_pool", "30d", value))
    assert texts(root)[::2] == ["check_pool uptime 30d", shown]
    assert colour in [r.get("fill") for r in root.iter(f"{NS}rect")]


def test_the_sparkline_draws_the_durations_and_marks_failed_runs() -> None:
    root = ET.fromstring(svg.sparkline([(0.1, True), (0.4, False), (0.2, True)], "check_pool"))
    assert root.get("role") == "img" and "latest 200 ms, slowest 400 ms" in (root.get("aria-label") or "")
    (line,) = root.iter(f"{NS}polyline")
    assert len((line.get("points") or "").split()) == 3
    assert len(list(root.iter(f"{NS}circle"))) == 1
    empty = ET.fromstring(svg.sparkline([], "check_pool"))
    assert empty.get("aria-label") == "check_pool: no runs yet"


def test_the_bar_has_a_titled_rectangle_per_day() -> None:
    days = [Day(86400.0 * i, None if i == 0 else (0.95 if i == 5 else 1.0), 0.0) for i in range(90)]
    root = ET.fromstring(svg.bar(days, "check_pool"))
    rects = list(root.iter(f"{NS}rect"))
    assert len(rects) == 90
    assert [r.get("class") for r in rects[:6]] == ["none", "up", "up", "up", "up", "partial"]
    assert rects[5].find(f"{NS}title").text == "1970-01-06: 95.00%"  # type: ignore[union-attr]
    assert root.get("aria-label") == "check_pool: uptime per day over the last 90 days, lowest 95.00% on 1970-01-06"


def test_the_overview_bar_draws_days_of_one_colour_in_a_row_as_one_rectangle() -> None:
    days = [Day(86400.0 * i, None if i == 0 else (0.95 if i == 5 else 1.0), 0.0) for i in range(90)]
    root = ET.fromstring(svg.bar(days, "check_pool", titled=False))
    rects = [(r.get("class"), int(r.get("x") or 0), int(r.get("width") or 0)) for r in root.iter(f"{NS}rect")]
    assert rects == [("none", 0, 3), ("up", 4, 15), ("partial", 20, 3), ("up", 24, 84 * 4 - 1)]
    assert rects[-1][1] + rects[-1][2] == 90 * 4 - 1  # the same extent as the titled bar
    assert root.get("aria-label") == "check_pool: uptime per day over the last 90 days, lowest 95.00% on 1970-01-06"
