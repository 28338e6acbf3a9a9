"""Metric kinds and the sample names each shows: one definition for the exporter, profiles and parser."""

from __future__ import annotations

import pytest

from fraiseql_checks import metrics
from fraiseql_checks.metrictypes import (
    HISTOGRAM_PARTS,
    Family,
    Kind,
    family_name,
    family_of,
    sample_name,
    series_names,
)
from fraiseql_checks.targets import profiles
from fraiseql_checks.targets.exposition import Exposition


def test_each_kind_shows_its_series() -> None:
    assert series_names("x", Kind.HISTOGRAM) == ("x_bucket", "x_sum", "x_count")
    assert series_names("x", "gaugehistogram") == ("x_bucket", "x_gsum", "x_gcount")
    assert series_names("x", "summary") == ("x", "x_sum", "x_count")
    assert series_names("x_total", Kind.COUNTER) == series_names("x_total", "untyped") == ("x_total",)
    assert HISTOGRAM_PARTS == ("bucket", "sum", "count")


def test_a_sample_is_named_by_its_part() -> None:
    assert sample_name("x", Kind.HISTOGRAM, "bucket") == "x_bucket"
    assert sample_name("x", Kind.SUMMARY) == "x" and sample_name("x", Kind.SUMMARY, "count") == "x_count"
    assert sample_name("x", Kind.GAUGE) == "x"
    with pytest.raises(ValueError, match="x is a histogram: name one of its series"):
        sample_name("x", Kind.HISTOGRAM)
    with pytest.raises(ValueError, match="x is a counter, it has no 'bucket' series"):
        sample_name("x", Kind.COUNTER, "bucket")
    assert family_name("x_bucket", Kind.HISTOGRAM, "bucket") == family_name("x", Kind.HISTOGRAM, "bucket") == "x"


def test_both_kinds_of_definition_are_families() -> None:
    ours, theirs = metrics.DURATION, profiles.PROFILES["fraiseql-v2"].metrics["fraiseql_query_duration_seconds"]
    assert isinstance(ours, Family) and isinstance(theirs, Family)
    assert ours.series_names == series_names(ours.name, Kind.HISTOGRAM)
    assert theirs.sample("count") == "fraiseql_query_duration_seconds_count"
    assert family_of("fraiseql_check_duration_seconds_sum", metrics.ALL) is ours
    assert family_of("fraiseql_check_duration_seconds", metrics.ALL) is ours
    assert family_of("fraiseql_check_up_total", metrics.ALL) is None
    assert profiles.COUNTER is Kind.COUNTER and profiles.HISTOGRAM == "histogram"


def test_a_family_is_checked_when_defined() -> None:
    with pytest.raises(ValueError, match="not a valid metric name"):
        profiles.Metric("fraiseql-queries", Kind.COUNTER)
    with pytest.raises(ValueError, match="not a metric type"):
        profiles.Metric("fraiseql_queries", "counter")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot have a label 'le'"):
        profiles.Metric("fraiseql_latency_seconds", Kind.HISTOGRAM, ("le",))


def test_a_parsed_page_declares_the_same_series_as_a_definition() -> None:
    page = "# TYPE h histogram\n# TYPE s summary\n# TYPE g gauge\n"
    assert Exposition.parse(page).series_names == {*series_names("h", "histogram"), *series_names("s", "summary"), "g"}
