"""Telling the FraiseQL version from a server's answers (the recorded ones in tests/data/fraiseql)."""

from __future__ import annotations

import pytest

from fraiseql_checks.init.probe import probe, profile_from_series
from fraiseql_checks.targets.exposition import Exposition
from tests.init.conftest import V1, FakeFraiseQLV1
from tests.support.fraiseql_v2 import DEFAULT_TOKEN, PAGE, PAGE_WITHOUT_OBSERVERS, FakeFraiseQLV2, recorded_page


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (recorded_page(PAGE), "fraiseql-v2"),
        (recorded_page(PAGE_WITHOUT_OBSERVERS), "fraiseql-v2"),
        (recorded_page("metrics.txt", V1), "fraiseql-v1"),
    ],
    ids=["v2", "v2-without-observers", "v1"],
)
def test_a_recorded_page_names_its_version(page: str, expected: str) -> None:
    found = profile_from_series(Exposition.parse(page).series_names)
    assert found is not None and found[0] == expected and found[1] > 5


def test_a_page_of_no_fraiseql_names_no_version() -> None:
    assert profile_from_series(Exposition.parse("# TYPE up gauge\nup 1\n").series_names) is None


def test_v2_with_its_token(fraiseql_v2: FakeFraiseQLV2) -> None:
    found = probe(fraiseql_v2.url, DEFAULT_TOKEN)
    assert (found.reachable, found.profile, found.metrics_ok, found.problem) == (True, "fraiseql-v2", True, "")
    assert found.health is not None and found.health["version"] == "2.15.0"


def test_v2_with_a_wrong_token_says_so(fraiseql_v2: FakeFraiseQLV2) -> None:
    found = probe(fraiseql_v2.url, "not-the-right-token-at-all")
    assert found.profile == "fraiseql-v2"
    assert found.problem == "/metrics refused the token (HTTP 401): check FRAISEQL_METRICS_TOKEN"


def test_v1(fraiseql_v1: FakeFraiseQLV1) -> None:
    found = probe(fraiseql_v1.url)
    assert (found.reachable, found.profile, found.metrics_ok) == (True, "fraiseql-v1", True)


def test_an_unhealthy_v2_answers_503_and_is_still_read(fraiseql_v2: FakeFraiseQLV2) -> None:
    fraiseql_v2.status = "unhealthy"
    found = probe(fraiseql_v2.url, DEFAULT_TOKEN)
    assert (found.reachable, found.health_code, found.profile) == (True, 503, "fraiseql-v2")
    assert found.summary().startswith(
        f"FraiseQL 2.15.0 at {fraiseql_v2.url}: unhealthy (HTTP 503); profile fraiseql-v2"
    )


def test_a_server_that_is_not_fraiseql(fraiseql_v2: FakeFraiseQLV2) -> None:
    fraiseql_v2.health_override = (200, "text/html", "<html>hello</html>")
    found = probe(fraiseql_v2.url)
    assert not found.reachable
    assert found.summary() == (
        f"{fraiseql_v2.url} is not FraiseQL: expected JSON, got text/html (HTTP 200): <html>hello</html>; "
        "profile fraiseql-v2 (the default)"
    )
