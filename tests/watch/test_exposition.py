"""The /metrics text: golden file, promtool, and an independent parser reading it back."""

from __future__ import annotations

import copy
import gzip
import importlib
import subprocess
import time
import types
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families

from fraiseql_checks import metrics as m
from fraiseql_checks.checks import Check
from fraiseql_checks.result import Outcome, Result
from fraiseql_checks.spec import make_spec
from fraiseql_checks.watch import exposition, pages
from fraiseql_checks.watch.exposition import CheckSeries, Histogram, ScrapeCadence
from fraiseql_checks.watch.maintenance import as_windows
from tests.support.checkdir import CheckDir
from tests.support.services import prometheus, require_binary, wait_until
from tests.support.watcher import WatchProcess, parse_metrics

GOLDEN = Path(__file__).parent / "golden" / "metrics.txt"
T0 = 1_750_000_000.0


def make_check(check_id: str, **spec: object) -> Check:
    path, _, name = check_id.partition("::")
    return Check(
        id=check_id,
        name=name,
        function_name=name.split("[")[0],
        path=Path("/project") / path,
        module=types.ModuleType("m"),
        func=lambda: None,
        spec=make_spec(**spec),  # type: ignore[arg-type]
        is_async=False,
        argnames=(),
        severity=str(spec.get("severity", "warning")),
        interval=30.0,
    )


def run(check: Check, outcome: Outcome, duration: float, at: float, **values: float) -> Result:
    return Result(check.id, check.name, outcome, duration_s=duration, started_at=at, values=dict(values))


def sample_page() -> str:
    db = make_check(
        "checks/db/check_pg.py::check_answers",
        severity="critical",
        runbook="docs/runbooks/database-down.md",
        owner="dba",
        labels={"suite": "database", "team": "core", "severity": "high"},
    )
    odd = make_check('checks/check_odd.py::check_q[{ users(filter: "a\\b") }\n100%]')
    db_series, odd_series = CheckSeries(db), CheckSeries(odd, tuple(as_windows([{"from": "00:00", "to": "24:00"}])))
    db_series.observe(run(db, Outcome.PASSED, 0.004, T0, lag_seconds=0.5))
    db_series.observe(run(db, Outcome.FAILED, 0.3, T0 + 30))
    db_series.observe(run(db, Outcome.PASSED, 1.5, T0 + 60, lag_seconds=2.0, connections=12))
    db_series.set_state(m.STATE_VALUES["passing"], 0)
    odd_series.observe(run(odd, Outcome.ERROR, 12.0, T0 + 1))
    odd_series.observe(run(odd, Outcome.SKIPPED, 0.0, T0 + 31))
    odd_series.set_state(m.STATE_VALUES["failing"], 1)
    odd_series.overlap()
    odd_series.overlap()
    lateness = Histogram(m.LATENESS_BUCKETS)
    for value in (0.0001, 0.0015, 0.003, 0.2):
        lateness.observe(value)

    def own() -> list[str]:
        return [
            exposition.header(m.LATENESS) + lateness.fill(exposition.histogram_template(m.LATENESS, "")),
            exposition.simple(m.IN_PROGRESS, 3),
            exposition.labelled(m.RELOADS, {"success": 1, "failure": 0}),
            exposition.labelled(m.FIXTURE_REBUILDS, {}),
            exposition.simple(m.LONGEST_BLOCK, 0.25),
            exposition.labelled(m.ISOLATED, {'checks/check_odd.py::check_q[{ users(filter: "a\\b") }\n100%]': 1}),
            exposition.multi(m.WORKER_RESTARTS, {("1", "exited"): 2, ("isolated", "memory"): 1}),
        ]

    return b"".join(exposition.render([db_series, odd_series], T0 + 62, own)).decode()


def test_the_page_matches_the_golden_file() -> None:
    assert sample_page() == GOLDEN.read_text(encoding="utf-8")


def test_promtool_finds_nothing_to_say() -> None:
    promtool = require_binary("promtool")
    done = subprocess.run([promtool, "check", "metrics"], input=sample_page(), capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_an_independent_parser_reads_back_every_value() -> None:
    samples = parse_metrics(sample_page())
    db = (("check", "checks/db/check_pg.py::check_answers"),)
    odd_id = 'checks/check_odd.py::check_q[{ users(filter: "a\\b") }\n100%]'
    odd = (("check", odd_id),)
    assert samples[("fraiseql_check_up", db)] == 1.0
    assert samples[("fraiseql_check_up", odd)] == 0.0  # the skipped run after the error changes nothing
    assert samples[("fraiseql_check_runs_total", (*db, ("outcome", "failed")))] == 1.0
    assert samples[("fraiseql_check_runs_total", (*odd, ("outcome", "skipped")))] == 1.0
    assert samples[("fraiseql_check_duration_seconds_bucket", (*db, ("le", "0.005")))] == 1.0
    assert samples[("fraiseql_check_duration_seconds_bucket", (*db, ("le", "2.5")))] == 3.0
    assert samples[("fraiseql_check_duration_seconds_sum", db)] == 1.804
    assert samples[("fraiseql_check_isolated", odd)] == 1.0
    assert samples[("fraiseql_check_worker_restarts_total", (("reason", "exited"), ("worker", "1")))] == 2.0
    assert samples[("fraiseql_check_worker_restarts_total", (("reason", "memory"), ("worker", "isolated")))] == 1.0
    assert samples[("fraiseql_check_duration_seconds_count", odd)] == 2.0
    assert samples[("fraiseql_check_last_run_timestamp_seconds", db)] == T0 + 60
    assert samples[("fraiseql_check_value", (*db, ("name", "connections")))] == 12.0
    assert ("fraiseql_check_value", (*db, ("name", "lag_seconds"))) in samples
    assert samples[("fraiseql_check_state", odd)] == 1.0
    assert samples[("fraiseql_check_silenced", odd)] == 1.0  # the all-day window
    assert samples[("fraiseql_check_silenced", db)] == 0.0
    assert samples[("fraiseql_check_skipped_overlapping_runs_total", odd)] == 2.0
    info = {
        "check": "checks/db/check_pg.py::check_answers",
        "severity": "critical",
        "suite": "database",
        "interval": "30s",
        "runbook": "docs/runbooks/database-down.md",
        "owner": "dba",
        "team": "core",
        "label_severity": "high",  # a label of the check's own that clashes with ours
    }
    assert samples[("fraiseql_check_info", tuple(sorted(info.items())))] == 1.0
    assert samples[("fraiseql_check_scheduling_lateness_seconds_bucket", (("le", "0.002"),))] == 2.0
    assert samples[("fraiseql_check_reloads_total", (("result", "success"),))] == 1.0


def test_a_skipped_slot_renders_only_the_skipped_runs_line_again() -> None:
    """Past capacity every check skips a slot at every interval: that must not make the next
    scrape render all of its lines again (at 10,000 checks that was most of the page)."""
    check = make_check("checks/check_busy.py::check_busy")
    series = CheckSeries(check)
    series.observe(run(check, Outcome.PASSED, 0.01, T0))
    before = series.chunks(T0 + 1)
    series.overlap()
    series.overlap()
    after = series.chunks(T0 + 2)
    changed = [metric.name for metric, old, new in zip(m.PER_CHECK, before, after, strict=True) if old is not new]
    assert changed == [m.OVERLAPS.name]
    text = b"".join(after).decode()
    assert parse_metrics(text)[(m.OVERLAPS.name, (("check", check.id),))] == 2.0
    series.observe(run(check, Outcome.FAILED, 0.01, T0 + 3))  # a run: everything may change
    again = series.chunks(T0 + 4)
    assert parse_metrics(b"".join(again).decode())[(m.OVERLAPS.name, (("check", check.id),))] == 2.0
    assert parse_metrics(b"".join(again).decode())[("fraiseql_check_up", (("check", check.id),))] == 0.0


def test_checks_slower_than_the_scrapes_are_rendered_as_they_change_faster_ones_at_the_scrape() -> None:
    cadence = ScrapeCadence()
    # before a second scrape: Prometheus' usual interval is assumed
    assert cadence.render_now(ScrapeCadence.ASSUMED) and not cadence.render_now(5.0)
    cadence.scraped(100.0)
    cadence.scraped(100.2)  # the first gap is taken as it is: no twenty scrapes to forget the assumption
    assert cadence.render_now(0.4) and not cadence.render_now(0.1)
    for n in range(2, 60):  # scraped every 0.2 s (two servers, or a tight scrape_interval)
        cadence.scraped(100.0 + n * 0.2)
    assert cadence.render_now(0.4) and cadence.render_now(1.0)
    assert not cadence.render_now(0.1)  # runs twice between scrapes: rendered once, at the scrape
    for n in range(1, 60):  # then every 15 s
        cadence.scraped(112.0 + n * 15.0)
    assert cadence.render_now(30.0) and not cadence.render_now(1.0)
    cadence.scraped(0.0)  # a clock that went back counts as no time, not as negative time
    assert cadence.every >= 0


def test_the_kept_columns_give_the_page_a_fresh_render_gives_after_every_change() -> None:
    """Between scrapes the page keeps each family's pieces and writes in only what changed:
    after runs, skipped slots, state changes, a silence coming and going, a maintenance
    window, a reload of metadata and checks coming and going, it must read as a page
    rendered from scratch (copies of the series with nothing cached)."""
    checks = [make_check(f"checks/check_{i}.py::check_{i}") for i in range(4)]
    series = [CheckSeries(check) for check in checks]
    kept = exposition.Columns()
    silenced_now: set[str] = set()

    def from_scratch(members: list[CheckSeries], now: float) -> bytes:
        copies = [copy.copy(s) for s in members]
        for c in copies:
            c.forget()
        return b"".join(exposition.render(copies, now, list))

    def same(members: list[CheckSeries], now: float) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        page = b"".join(exposition.render(members, now, list, columns=kept))
        assert page == from_scratch(members, now)
        return parse_metrics(page.decode())

    def silenced(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], check: Check) -> float:
        return samples[(m.SILENCED.name, (("check", check.id),))]

    same(series, T0)
    same(series, T0 + 1)  # nothing changed: the kept pieces
    series[0].observe(run(checks[0], Outcome.PASSED, 0.01, T0 + 2, rows=3))
    series[2].observe(run(checks[2], Outcome.FAILED, 4.0, T0 + 2))
    same(series, T0 + 3)
    series[1].overlap()
    same(series, T0 + 4)
    series[1].overlap()
    series[3].set_state(m.STATE_VALUES["failing"], 2)
    same(series, T0 + 5)
    series[0].observe(run(checks[0], Outcome.FAILED, 0.01, T0 + 5.5))
    series[0].chunks(T0 + 5.5)  # rendered right after its run, as the watcher does for slow checks
    series[2].silenced_by = lambda at: checks[2].id in silenced_now
    silenced_now.add(checks[2].id)
    assert silenced(same(series, T0 + 6), checks[2]) == 1.0
    series[2].silenced_by = None  # the last silence ended: the series no longer asks
    assert silenced(same(series, T0 + 7), checks[2]) == 0.0
    series[3].windows = tuple(as_windows([{"from": "00:00", "to": "24:00"}]))
    assert silenced(same(series, T0 + 8), checks[3]) == 1.0
    series[3].windows = ()
    assert silenced(same(series, T0 + 8.5), checks[3]) == 0.0
    series[0].describe(make_check(checks[0].id, owner="dba", runbook="docs/runbooks/x.md"), ())
    same(series, T0 + 9)
    newcomer = make_check("checks/check_new.py::check_new")
    series = [series[0], CheckSeries(newcomer), *series[2:]]  # a reload: one went, one came
    same(series, T0 + 10)
    series[1].observe(run(newcomer, Outcome.ERROR, 0.5, T0 + 10))
    series[1].overlap()
    same(series, T0 + 11)
    series.reverse()  # same checks, another order
    same(series, T0 + 12)
    same([], T0 + 13)


def test_a_run_joins_again_only_the_families_it_changed() -> None:
    """A scrape joins again only the families whose chunks changed: after a passing run
    like the one before, the run counters, the duration histogram and the last run's
    time; a skipped slot, only the skipped-runs line; a state set to what it was, nothing."""
    checks = [make_check(f"checks/check_{i}.py::check_{i}") for i in range(3)]
    series = [CheckSeries(check) for check in checks]
    kept = exposition.Columns()

    def families() -> dict[str, bytes]:
        parts = exposition.render(series, T0, list, columns=kept)
        return {metric.name: parts[2 * k + 1] for k, metric in enumerate(m.PER_CHECK)}

    def rejoined(before: dict[str, bytes], after: dict[str, bytes]) -> set[str]:
        return {name for name in before if after[name] is not before[name]}

    for s, check in zip(series, checks, strict=True):
        s.observe(run(check, Outcome.PASSED, 0.01, T0))
        s.set_state(m.STATE_VALUES["passing"], 0)
    first = families()
    series[1].observe(run(checks[1], Outcome.PASSED, 0.02, T0 + 1))
    second = families()
    assert rejoined(first, second) == {m.RUNS.name, m.DURATION.name, m.LAST_RUN.name}
    series[2].overlap()
    series[0].set_state(m.STATE_VALUES["passing"], 0)
    third = families()
    assert rejoined(second, third) == {m.OVERLAPS.name}
    assert families() == third and rejoined(third, families()) == set()


def test_series_that_come_while_a_silence_holds_ask_it_and_none_asks_once_all_ended() -> None:
    """While no silence holds, no series asks (a scrape of 10,000 checks asks nothing); a
    check that comes later, by a reload or a hand-over from another watcher of the cluster,
    asks from the next sync with the store on."""
    from fraiseql_checks.silences import Matchers, Silence
    from fraiseql_checks.watch.schedule import Schedule
    from fraiseql_checks.watch.silences import Silences

    schedule: Schedule[types.SimpleNamespace] = Schedule(0.0)
    silences = Silences(types.SimpleNamespace(schedule=schedule))  # type: ignore[arg-type]

    def watch(check_id: str) -> CheckSeries:
        check = make_check(check_id)
        series = CheckSeries(check)
        schedule.add(check_id, types.SimpleNamespace(check=check, series=series), 30.0, T0)
        return series

    first = watch("checks/check_a.py::check_a")
    silences._changed()
    assert first.silenced_by is None  # nothing to ask
    now = time.time()
    silences.by_id["s1"] = Silence("s1", Matchers(check="checks/*"), "deploy", now - 60, now + 3600, now - 60)
    silences._changed()
    assert first.silenced_by is not None and first.silenced_by(now)
    handed_over = watch("checks/check_b.py::check_b")
    silences._changed()  # the next sync with the store
    assert handed_over.silenced_by is not None and handed_over.silenced_by(now)
    del silences.by_id["s1"]
    silences._changed()
    assert first.silenced_by is None and handed_over.silenced_by is None


def test_every_exported_family_is_defined_once_with_its_unit() -> None:
    names = [metric.name for metric in m.ALL]
    assert len(names) == len(set(names))
    for metric in m.ALL:
        assert metric.help.endswith(".") and metric.name.islower()
        if metric.kind is m.Kind.HISTOGRAM:
            assert metric.buckets == tuple(sorted(metric.buckets))
    assert m.by_name("fraiseql_check_duration_seconds_bucket") is m.DURATION


def test_a_histogram_renders_cumulative_buckets_with_an_observation_on_a_bound_in_its_bucket() -> None:
    """Each bucket counts its own observations and they are summed when rendered: what
    Prometheus' parser reads back is the cumulative count at or below each bound (``le``)."""
    assert m.LATENESS_BUCKETS == (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
    histogram = Histogram(m.LATENESS_BUCKETS)
    for value in (0.0001, 0.001, 0.0015, 0.02, 0.03, 0.5, 7.0):
        histogram.observe(value)
    expected = [1, 2, 3, 3, 3, 4, 5, 5, 5, 6, 6, 6, 7]
    assert histogram.cumulative() == expected
    text = exposition.header(m.LATENESS) + histogram.fill(exposition.histogram_template(m.LATENESS, ""))
    samples = parse_metrics(text)
    name = m.LATENESS.sample("bucket")
    buckets = {float(labels[0][1]): value for (sample, labels), value in samples.items() if sample == name}
    assert [buckets[bound] for bound in (*m.LATENESS_BUCKETS, float("inf"))] == expected
    assert samples[(m.LATENESS.sample("count"), ())] == 7
    assert samples[(m.LATENESS.sample("sum"), ())] == pytest.approx(7.5526)


def test_histogram_quantiles_interpolate_like_promql() -> None:
    histogram = Histogram((0.01, 0.02, 0.05))
    for value in [0.005] * 50 + [0.015] * 49 + [0.04]:
        histogram.observe(value)
    assert histogram.quantile(0.5) == 0.01
    assert 0.019 < histogram.quantile(0.99) <= 0.02


# ---- OpenMetrics and gzip (issue 15) ------------------------------------------------------

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


def sample_openmetrics_page(monkeypatch: pytest.MonkeyPatch) -> str:
    render = exposition.render
    monkeypatch.setattr(exposition, "render", lambda *args: render(*args, open_metrics=True))
    return sample_page()


def test_the_openmetrics_page_reads_back_as_the_same_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    text = sample_page()
    page = sample_openmetrics_page(monkeypatch)
    assert page.endswith("\n# EOF\n") and page.count("# EOF") == 1
    families = {f.name: f for f in openmetrics_families(page)}  # raises on anything OpenMetrics 1.0 forbids
    # a counter's family drops _total, its samples keep it
    assert families["fraiseql_check_runs"].type == "counter"
    assert "# TYPE fraiseql_check_runs counter\n" in page and "# TYPE fraiseql_check_runs_total" not in page
    assert families["fraiseql_check_worker_restarts"].type == "counter"
    assert families["fraiseql_check_duration_seconds"].type == "histogram"
    om = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in openmetrics_families(page)
        for s in family.samples
    }
    assert om == parse_metrics(text)
    # only the metadata differs: the samples are the same lines
    assert [line for line in page.splitlines() if not line.startswith("#")] == [
        line for line in text.splitlines() if not line.startswith("#")
    ]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("", False),
        ("*/*", False),
        ("text/plain;version=0.0.4", False),
        (PROMETHEUS_ACCEPT, True),
        ("application/openmetrics-text", True),
        ("application/openmetrics-text;q=0.2,text/plain", False),
        ("application/openmetrics-text;q=0, text/plain;q=0.1", False),
    ],
)
def test_openmetrics_is_chosen_by_accept(accept: str, expected: bool) -> None:
    assert pages.wants_openmetrics(accept.encode()) is expected


@pytest.mark.parametrize(
    ("accept_encoding", "expected"),
    [("", False), ("gzip", True), ("gzip, deflate, br", True), ("identity", False), ("gzip;q=0", False), ("*", True)],
)
def test_gzip_is_chosen_by_accept_encoding(accept_encoding: str, expected: bool) -> None:
    assert pages.accepts_gzip(accept_encoding.encode()) is expected


@pytest.mark.parametrize("library", ["zlib", "isal.isal_zlib"])
def test_gzip_pieces_make_one_stream(library: str) -> None:
    pieces = [b"x" * 300_000, b"", sample_page().encode() * 3, b"tail\n"]
    compressed = pages.gzip_pieces(pieces, library=importlib.import_module(library))
    assert gzip.decompress(b"".join(compressed)) == b"".join(pieces)
    assert sum(map(len, compressed)) < sum(map(len, pieces)) / 5
    # a small page in many small pieces compresses as well as in one
    lines = [line + b"\n" for line in sample_page().encode().splitlines()] * 3
    compressed = pages.gzip_pieces(lines, library=importlib.import_module(library))
    assert gzip.decompress(b"".join(compressed)) == b"".join(lines)
    assert sum(map(len, compressed)) <= len(gzip.compress(b"".join(lines), pages.GZIP_LEVEL)) * 1.1


def get_metrics(address: str, **headers: str) -> tuple[dict[str, str], bytes]:
    request = urllib.request.Request(f"http://{address}/metrics", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return {k.lower(): v for k, v in response.headers.items()}, response.read()


def test_a_live_watcher_negotiates_gzip_and_openmetrics_and_prometheus_scrapes_it(
    checkdir: CheckDir, watch: Callable[..., WatchProcess]
) -> None:
    promtool = require_binary("promtool")
    checkdir.write("fraiseql-checks.yaml", "start_jitter: 50ms\n")
    checkdir.write("checks/check_one.py", "def check_one():\n    pass\n\ndef check_two():\n    assert 1 == 2\n")
    watcher = watch()
    watcher.wait_for(
        lambda s: (
            watcher.runs("checks/check_one.py::check_one") >= 1
            and watcher.runs("checks/check_one.py::check_two", "failed") >= 1
        ),
        what="a run of each",  # so that two pages compared below hold the same series
    )

    headers, plain = get_metrics(watcher.address)
    assert headers["content-type"] == exposition.CONTENT_TYPE and "content-encoding" not in headers
    assert "accept-encoding" in headers["vary"]
    done = subprocess.run([promtool, "check", "metrics"], input=plain, capture_output=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")

    headers, zipped = get_metrics(watcher.address, **{"Accept-Encoding": "gzip"})
    assert headers["content-encoding"] == "gzip" and "accept-encoding" in headers["vary"]
    assert headers["content-type"] == exposition.CONTENT_TYPE
    assert int(headers["content-length"]) == len(zipped) < len(plain) / 3
    unzipped = gzip.decompress(zipped).decode()
    assert (
        unzipped.startswith("# HELP fraiseql_check_info ")
        and parse_metrics(unzipped).keys() == parse_metrics(plain.decode()).keys()
    )

    headers, body = get_metrics(watcher.address, **{"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"})
    assert headers["content-type"] == exposition.OPENMETRICS_CONTENT_TYPE
    page = gzip.decompress(body).decode()
    assert page.endswith("# EOF\n")
    names = {family.name for family in openmetrics_families(page)}
    assert {"fraiseql_check_runs", "fraiseql_check_http_connections_accepted", "process_cpu_seconds"} <= names

    # Prometheus asks for OpenMetrics and gzip by default (the Accept above): it must read the page whole
    with prometheus([watcher.address]) as server:

        def scraped() -> list[object] | None:
            found = server.query('fraiseql_check_runs_total{outcome="failed"} > 0')
            up = server.query('up{job="target"} == 1')
            return found if found and up else None

        (failed,) = wait_until(scraped, timeout=60, every=0.25, what="Prometheus to scrape the watcher")
        assert failed["metric"]["check"] == "checks/check_one.py::check_two"  # type: ignore[index]
        assert server.query('scrape_samples_scraped{job="target"}')
    assert watcher.stop() == 0
