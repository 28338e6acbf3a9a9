"""The metric definitions and the page that documents them stay in step."""

from __future__ import annotations

import re

from fraiseql_checks import metrics as m
from tests.support import REPO

ROW = re.compile(r"^\| `(?P<name>[a-z_]+)` \| (?P<kind>\w+) \| (?P<labels>[^|]+) \| (?P<help>.+) \|$")


def test_the_reference_lists_every_metric_with_its_type_and_labels() -> None:
    text = (REPO / "docs" / "metrics-reference.md").read_text(encoding="utf-8")
    documented = {}
    for line in text.splitlines():
        match = ROW.match(line)
        if match:
            labels = tuple(re.findall(r"`(\w+)`", match["labels"]))
            documented[match["name"]] = (match["kind"], labels, match["help"])
    defined = {metric.name: (metric.kind.value, metric.labels, metric.help) for metric in m.ALL}
    assert documented == defined


def test_bad_definitions_are_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="_total"):
        m.Metric("fraiseql_check_things", "Things.", m.Kind.COUNTER)
    with pytest.raises(ValueError, match="namespace"):
        m.Metric("other_thing", "Thing.", m.Kind.GAUGE)
    with pytest.raises(ValueError, match="unit"):
        m.Metric("fraiseql_check_wait", "Wait.", m.Kind.GAUGE, unit="seconds")
