"""Check states: thresholds, the failures-within-a-window rule, flapping, maintenance windows."""

from __future__ import annotations

import dataclasses
import datetime
import random

import pytest

from fraiseql_checks.result import Outcome
from fraiseql_checks.spec import make_spec
from fraiseql_checks.watch.maintenance import as_windows, silenced, windows_for
from fraiseql_checks.watch.state import CheckState, Rules, State, StateChange, StateRecord

P, F, E, S = Outcome.PASSED, Outcome.FAILED, Outcome.ERROR, Outcome.SKIPPED


def feed(state: CheckState, outcomes: list[Outcome], start: float = 0.0, every: float = 1.0) -> list[StateChange]:
    changes = []
    for index, outcome in enumerate(outcomes):
        change = state.observe(outcome, start + index * every, message=f"run {index}")
        if change is not None:
            changes.append(change)
    return changes


def transitions(changes: list[StateChange]) -> list[tuple[str, str]]:
    return [(c.previous.value, c.state.value) for c in changes]


def test_default_thresholds_change_on_every_flip() -> None:
    state = CheckState("c", Rules(flap_changes=100))
    changes = feed(state, [P, P, F, E, P])
    assert transitions(changes) == [("unknown", "passing"), ("passing", "failing"), ("failing", "passing")]
    assert changes[1].reason == "1 failing run in a row" and changes[1].message == "run 2"
    assert changes[2].at == 4.0


def test_failure_and_success_thresholds() -> None:
    state = CheckState("c", Rules(failure_threshold=3, success_threshold=2, flap_changes=100))
    assert transitions(feed(state, [F, F])) == []
    assert state.state is State.UNKNOWN and state.consecutive_failures == 2
    changes = feed(state, [F, P, F, F, F, P, P], start=2.0)
    assert transitions(changes) == [("unknown", "failing"), ("failing", "passing")]
    assert changes[0].reason == "3 failing runs in a row" and changes[0].consecutive_failures == 3
    assert changes[1].reason == "2 passing runs in a row" and changes[1].at == 8.0


def test_skipped_runs_change_nothing() -> None:
    state = CheckState("c", Rules(failure_threshold=2, flap_changes=100))
    feed(state, [P, F, S, S])
    assert state.consecutive_failures == 1 and state.state is State.PASSING
    assert transitions(feed(state, [F], start=10)) == [("passing", "failing")]


def test_failures_within_a_window() -> None:
    state = CheckState("c", Rules(failures_within=(3, 10.0), flap_changes=100))
    # three failures, but spread over more than ten seconds: still passing
    assert transitions(feed(state, [P, F, P, P, P, P, F, P, P, P, P, P, F], every=3.0)) == [("unknown", "passing")]
    changes = feed(state, [F, P, F], start=39.0, every=3.0)  # failures at 36, 39, 45: three within 10 s
    assert transitions(changes) == [("passing", "failing")]
    assert changes[0].reason == "3 failing runs within 10s" and changes[0].at == 45.0


def test_flapping_is_reported_once_and_settles_after_a_quiet_window() -> None:
    state = CheckState("c", Rules(flap_changes=4, flap_window=60.0))
    changes = feed(state, [P, F, P, F, P, F, P, F, P, F], every=1.0)
    assert transitions(changes) == [
        ("unknown", "passing"),
        ("passing", "failing"),
        ("failing", "passing"),
        ("passing", "failing"),
        ("failing", "flapping"),  # the fourth change within 60 s; then nothing while it flaps
    ]
    assert changes[-1].reason == "4 state changes within 1m"
    assert state.state is State.FLAPPING
    # failing steadily, but not yet for a whole window since the last change (at 9)
    assert feed(state, [F] * 5, start=10.0, every=10.0) == []
    settled = feed(state, [F], start=69.0)
    assert transitions(settled) == [("flapping", "failing")]
    assert settled[0].reason.startswith("no change for 1m")


def test_silenced_and_trace_id_travel_with_the_change() -> None:
    state = CheckState("c", Rules())
    change = state.observe(F, 5.0, silenced=True, message="boom", trace_id="ab" * 16)
    assert change == StateChange(
        "c", 5.0, State.UNKNOWN, State.FAILING, True, "1 failing run in a row", "boom", "ab" * 16, 1
    )


def test_new_rules_after_a_reload_keep_the_counts() -> None:
    state = CheckState("c", Rules(failure_threshold=5, flap_changes=100))
    feed(state, [P, F, F])
    state.update_rules(Rules(failure_threshold=3, flap_changes=100))
    assert transitions(feed(state, [F], start=3)) == [("passing", "failing")]


def test_check_metadata_for_the_state_rules() -> None:
    spec = make_spec(failures_within=(3, "5m"), success_threshold=2)
    assert spec.failures_within == (3, 300.0) and spec.failure_threshold is None
    with pytest.raises(ValueError, match="not both"):
        make_spec(failure_threshold=2, failures_within=(3, "5m"))
    with pytest.raises(ValueError, match="count"):
        make_spec(failures_within=(0, "5m"))


# ---- maintenance windows ----------------------------------------------------------------


def ts(text: str) -> float:
    return datetime.datetime.fromisoformat(text).timestamp()


def test_a_one_off_window_covers_matching_checks_between_start_and_end() -> None:
    (window,) = as_windows(
        [{"checks": ["checks/db/*"], "start": "2025-06-01T02:00:00Z", "end": "2025-06-01T04:00:00+00:00"}]
    )
    assert windows_for("checks/db/check_pg.py::check_up", [window]) == (window,)
    assert windows_for("checks/http/check_api.py::check_up", [window]) == ()
    assert not silenced([window], ts("2025-06-01T01:59:59+00:00"))
    assert silenced([window], ts("2025-06-01T02:00:00+00:00"))
    assert not silenced([window], ts("2025-06-01T04:00:00+00:00"))


def test_a_weekly_slot_in_a_time_zone_crossing_midnight() -> None:
    (window,) = as_windows([{"days": ["sat"], "from": "23:00", "to": "01:00", "timezone": "Europe/Paris"}])
    # Saturday 2025-06-07 23:30 in Paris is 21:30 UTC; Sunday 00:30 Paris is Saturday 22:30 UTC
    assert silenced([window], ts("2025-06-07T21:30:00+00:00"))
    assert silenced([window], ts("2025-06-07T22:30:00+00:00"))
    assert not silenced([window], ts("2025-06-07T23:30:00+00:00"))  # Sunday 01:30 in Paris
    assert not silenced([window], ts("2025-06-06T21:30:00+00:00"))  # a Friday


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"start": "2025-06-01T02:00:00Z"}, "both start and end"),
        ({"start": "2025-06-01T04:00:00Z", "end": "2025-06-01T02:00:00Z"}, "end must come after start"),
        ({"from": "25:00", "to": "01:00"}, "time of day"),
        ({"from": "01:00", "to": "02:00", "days": ["someday"]}, "day names"),
        ({"from": "01:00", "to": "02:00", "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"from": "01:00", "to": "02:00", "color": "red"}, "unknown key 'color'"),
        ({"start": "yesterday", "end": "today"}, "date and time"),
    ],
)
def test_bad_windows_say_what_is_wrong(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        as_windows([{"from": "01:00", "to": "02:00"}, raw])
    with pytest.raises(ValueError, match="window 2"):
        as_windows([{"from": "01:00", "to": "02:00"}, raw])


# ---- snapshot and restore: a restarted watcher goes on where it was --------------------


RULE_SETS = [
    Rules(),
    Rules(failure_threshold=3, success_threshold=2, flap_changes=4, flap_window=60.0),
    Rules(failures_within=(3, 20.0), success_threshold=2, flap_changes=3, flap_window=45.0),
    Rules(failure_threshold=2, flap_changes=0),
]


def runs(seed: int, count: int = 300) -> list[tuple[Outcome, float]]:
    """Outcomes in streaks of random length, some skipped, at uneven times: every
    threshold, window and flapping rule above gets crossed both ways."""
    rng = random.Random(seed)
    at, out = 1_750_000_000.0, list[tuple[Outcome, float]]()
    while len(out) < count:
        outcome = rng.choice([P, P, F, E])
        for _ in range(rng.choice([1, 1, 2, 3, 6])):
            out.append((S if rng.random() < 0.1 else outcome, at))
            at += rng.choice([1.0, 5.0, 7.5, 30.0, 90.0])
    return out[:count]


def observe_all(state: CheckState, sequence: list[tuple[Outcome, float]]) -> list[StateChange | None]:
    return [state.observe(outcome, at, message=f"run at {at}", trace_id=str(at)) for outcome, at in sequence]


def fields(state: CheckState) -> tuple[object, ...]:
    return (state.snapshot(), state.rules)


@pytest.mark.parametrize("rules", RULE_SETS)
def test_a_restored_machine_goes_on_exactly_as_the_original(rules: Rules) -> None:
    seen: set[State] = set()
    for seed in range(20):
        sequence = runs(seed)
        for cut_at in (0, 1, 37, 150, 299):
            original = CheckState("c", rules)
            observe_all(original, sequence[:cut_at])
            restored = CheckState("c", rules)
            restored.restore(original.snapshot())
            assert fields(restored) == fields(original)
            for outcome, at in sequence[cut_at:]:
                want = original.observe(outcome, at, message="m", trace_id="t")
                got = restored.observe(outcome, at, message="m", trace_id="t")
                assert got == want, (seed, cut_at, at)
                assert fields(restored) == fields(original), (seed, cut_at, at)
                seen.add(original.state)
    # the sequences are not trivial: they reach every state the rules allow
    assert seen >= {State.PASSING, State.FAILING} | ({State.FLAPPING} if rules.flap_changes else set())


def test_the_windows_travel_in_the_snapshot() -> None:
    """Without the failure times and the change times, a restored machine would decide
    differently: the snapshot carries them, oldest first."""
    rules = Rules(failures_within=(3, 20.0), flap_changes=3, flap_window=100.0)
    state = CheckState("c", rules)
    observe_all(state, [(P, 0.0), (F, 5.0), (P, 6.0), (F, 10.0), (F, 11.0), (P, 12.0)])
    record = state.snapshot()
    assert record.failures == (5.0, 10.0, 11.0)
    assert record.changes == (11.0, 12.0)  # failing at 11, passing again at 12
    assert record.state is State.PASSING and record.since == 12.0 and record.updated_at == 12.0
    restored = CheckState("c", rules)
    restored.restore(record)
    # one more failure: three within 20 s, so failing, and three changes within 100 s: flapping
    change = restored.observe(F, 13.0)
    assert change is not None and change == state.observe(F, 13.0)
    assert (change.previous, change.state) == (State.PASSING, State.FLAPPING)
    fresh = CheckState("c", rules)
    assert fresh.observe(F, 13.0) is None and fresh.state is State.UNKNOWN


def test_a_restart_keeps_counting_and_tells_nobody_again() -> None:
    """The failing check of 58 runs stays failing at 59; a fresh machine would report
    ``unknown -> failing`` again."""
    rules = Rules(failure_threshold=3)
    state = CheckState("c", rules)
    observe_all(state, [(F, float(t)) for t in range(58)])
    assert state.consecutive_failures == 58 and state.since == 2.0
    restored = CheckState("c", rules)
    restored.restore(state.snapshot())
    assert restored.observe(F, 3600.0) is None
    assert restored.consecutive_failures == 59 and restored.state is State.FAILING and restored.since == 2.0
    assert restored.updated_at == 3600.0


def test_a_flapping_check_stays_flapping_across_a_restart_and_settles_after_its_window() -> None:
    rules = Rules(flap_changes=4, flap_window=60.0)
    state = CheckState("c", rules)
    feed(state, [P, F, P, F, P])
    assert state.state is State.FLAPPING
    restored = CheckState("c", rules)
    restored.restore(state.snapshot())
    assert restored.observe(P, 30.0) is None and restored.state is State.FLAPPING
    settled = restored.observe(P, 64.0)  # the last change was at 4
    assert settled is not None and (settled.previous, settled.state) == (State.FLAPPING, State.PASSING)


def test_skipped_runs_update_nothing_but_the_time_of_the_last_run() -> None:
    state = CheckState("c", Rules())
    state.observe(F, 1.0)
    before = state.snapshot()
    assert state.observe(S, 2.0) is None
    assert state.snapshot() == dataclasses.replace(before, updated_at=2.0)
    assert CheckState("c", Rules()).snapshot() == StateRecord("c", State.UNKNOWN, State.UNKNOWN)


@pytest.mark.parametrize("cut_at", [2, 5, 9, 14])
@pytest.mark.parametrize(
    ("old", "new"),
    [
        (Rules(failure_threshold=5, flap_changes=100), Rules(failure_threshold=2, flap_changes=100)),
        (Rules(failure_threshold=2, success_threshold=3), Rules(failure_threshold=4)),
        (Rules(failures_within=(4, 60.0)), Rules(failures_within=(2, 5.0))),
        (Rules(failure_threshold=2), Rules(failures_within=(3, 10.0))),
        (Rules(flap_changes=6, flap_window=600.0), Rules(flap_changes=3, flap_window=5.0)),
        (Rules(flap_changes=3, flap_window=600.0), Rules(flap_changes=0)),
    ],
)
def test_restoring_under_new_rules_is_what_a_reload_would_have_done(old: Rules, new: Rules, cut_at: int) -> None:
    """The thresholds or the flapping window changed while the watcher was down: the
    restored machine behaves as the old one after ``update_rules``, counts kept."""
    outcomes = [P, F, P, F, F, P, F, F, F, P, P, F, P, F, F, F, P, P, P, F]
    sequence = [(outcome, 10.0 * index) for index, outcome in enumerate(outcomes)]
    original = CheckState("c", old)
    observe_all(original, sequence[:cut_at])
    restored = CheckState("c", new)
    restored.restore(original.snapshot())
    original.update_rules(new)
    assert fields(restored) == fields(original)
    assert observe_all(restored, sequence[cut_at:]) == observe_all(original, sequence[cut_at:])
    assert fields(restored) == fields(original)


def test_a_record_no_machine_could_have_written_is_made_sane() -> None:
    state = CheckState("c", Rules(flap_changes=100))
    state.restore(StateRecord("c", State.UNKNOWN, State.FLAPPING, consecutive_failures=-3, changes=(9.0, 1.0)))
    assert (state.base, state.state, state.consecutive_failures) == (State.UNKNOWN, State.UNKNOWN, 0)
    assert state.snapshot().changes == (1.0, 9.0)
    assert transitions(feed(state, [P], start=20.0)) == [("unknown", "passing")]
    state.restore(StateRecord("c", State.PASSING, State.FAILING))  # neither its base nor flapping
    assert state.state is State.PASSING
    with pytest.raises(ValueError, match="'other'"):
        state.restore(StateRecord("other", State.PASSING, State.PASSING))
