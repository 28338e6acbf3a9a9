"""The scheduler's bookkeeping, on a clock the test moves by hand."""

from __future__ import annotations

import gc
import random

from fraiseql_checks.watch.schedule import Schedule


def due_keys(schedule: Schedule[str], now: float) -> list[str]:
    return [entry.key for entry, _, _ in schedule.pop_due(now)]


def test_first_runs_are_spread_over_the_jitter_window() -> None:
    schedule: Schedule[str] = Schedule(spread=10.0, rng=random.Random(1))
    for index in range(1000):
        schedule.add(f"c{index}", "item", interval=60.0, now=100.0)
    dues = sorted(entry.due for entry in schedule)
    assert 100.0 <= dues[0] and dues[-1] < 110.0
    assert len(set(dues)) == 1000  # no two checks fire in the same instant
    buckets = [sum(1 for d in dues if 100 + i <= d < 101 + i) for i in range(10)]
    assert min(buckets) > 50  # spread evenly, not bunched at the start


def test_jitter_is_bounded_by_a_short_interval() -> None:
    schedule: Schedule[str] = Schedule(spread=10.0, rng=random.Random(2))
    for index in range(100):
        schedule.add(f"c{index}", "item", interval=2.0, now=0.0)
    assert max(entry.due for entry in schedule) < 2.0


def test_runs_keep_a_fixed_rate_and_report_when_they_were_due() -> None:
    schedule: Schedule[str] = Schedule(spread=0.0)
    schedule.add("a", "item", interval=5.0, now=0.0)
    assert [(e.key, due, missed) for e, due, missed in schedule.pop_due(0.0)] == [("a", 0.0, 0)]
    assert due_keys(schedule, 4.99) == []
    # A late wake-up does not shift the phase: the next slot is still 10.0.
    assert [(e.key, due, missed) for e, due, missed in schedule.pop_due(5.7)] == [("a", 5.0, 0)]
    assert schedule.next_due() == 10.0


def test_slots_missed_during_a_stall_are_not_made_up_in_a_burst() -> None:
    schedule: Schedule[str] = Schedule(spread=0.0)
    schedule.add("a", "item", interval=1.0, now=0.0)
    due_keys(schedule, 0.0)
    # once, not thirty times; the slots 2.0 to 30.0 passed after the one it runs for, and
    # are said, for the caller to count
    assert [(e.key, due, missed) for e, due, missed in schedule.pop_due(30.5)] == [("a", 1.0, 29)]
    assert schedule.next_due() == 31.0  # its own next slot: the phase is kept
    assert [missed for _, _, missed in schedule.pop_due(31.0)] == [0]  # on time again: none missed


def test_a_first_slot_that_comes_late_misses_nothing() -> None:
    """Checks are scheduled before the watcher's loop begins; when it begins a few intervals
    later, the slots before a check's first run were never its to miss."""
    schedule: Schedule[str] = Schedule(spread=0.0)
    schedule.add("a", "item", interval=1.0, now=0.0)
    assert [(e.key, due, missed) for e, due, missed in schedule.pop_due(3.5)] == [("a", 0.0, 0)]
    assert schedule.next_due() == 4.0
    assert [(due, missed) for _, due, missed in schedule.pop_due(6.5)] == [(4.0, 2)]  # 5.0 and 6.0 were


def test_after_a_stall_each_entry_comes_due_once_and_its_slots_add_up() -> None:
    """Whatever the interval and the stall (the rounding of a float division among them),
    one call hands an entry out once, its next slot is after ``now``, and the slots it
    passed over are all said: the run's slot, the missed ones and the next make a whole
    number of intervals."""
    rng = random.Random(6)
    for _ in range(2000):
        interval = rng.choice([0.1, 0.3, 0.7, 1.1, rng.uniform(0.001, 5.0)])
        schedule: Schedule[str] = Schedule(spread=0.0)
        schedule.add("a", "item", interval=interval, now=0.0)
        due_keys(schedule, 0.0)
        now = rng.choice([round(rng.uniform(0.0, 50.0), 1), rng.uniform(0.0, 50.0), interval * rng.randint(1, 400)])
        handed = list(schedule.pop_due(now))
        assert len(handed) <= 1
        next_due = schedule.next_due()
        assert next_due is not None and now < next_due <= now + interval * (1 + 1e-9)  # its next slot, none skipped
        if handed:
            (_, due, missed), *_ = handed
            assert round((next_due - due) / interval) == missed + 1


def test_checks_a_stall_delayed_together_do_not_come_due_together_from_then_on() -> None:
    schedule: Schedule[str] = Schedule(spread=1.0, rng=random.Random(3))
    for index in range(100):
        schedule.add(f"c{index}", "item", interval=1.0, now=0.0)
    phases = sorted(entry.due for entry in schedule)
    assert len(due_keys(schedule, 7.25)) == 100  # a stall: all are late, each runs once
    after = sorted(entry.due for entry in schedule)
    assert all(7.25 < due <= 8.25 for due in after)
    # each keeps its phase within the interval, so they stay spread (not all due at 8.25)
    assert sorted(round(due % 1.0, 9) for due in after) == sorted(round(phase % 1.0, 9) for phase in phases)


def test_checks_taken_over_together_run_at_once_and_then_spread() -> None:
    schedule: Schedule[str] = Schedule(spread=10.0, rng=random.Random(4))
    for index in range(100):
        schedule.add(f"c{index}", "item", interval=60.0, now=50.0, at_once=True)
    assert len(due_keys(schedule, 50.0)) == 100  # all at once, as taken over
    after = sorted(entry.due for entry in schedule)
    assert 110.0 <= after[0] and after[-1] < 120.0 and len(set(after)) == 100
    assert min(sum(1 for d in after if 110 + i <= d < 111 + i) for i in range(10)) > 2  # spread over 10 s
    due_keys(schedule, 125.0)
    assert sorted(entry.due for entry in schedule) == [due + 60.0 for due in after]  # a fixed rate again


def test_a_running_entry_is_handed_out_again_for_the_caller_to_count_the_overlap() -> None:
    schedule: Schedule[str] = Schedule(spread=0.0)
    entry = schedule.add("a", "item", interval=1.0, now=0.0)
    due_keys(schedule, 0.0)
    entry.running = True
    (again, due, missed), *_ = list(schedule.pop_due(1.0))
    assert again is entry and due == 1.0 and missed == 0 and again.running


def test_removed_entries_never_come_due_and_updates_keep_the_phase() -> None:
    schedule: Schedule[str] = Schedule(spread=0.0)
    schedule.add("a", "old", interval=10.0, now=0.0)
    schedule.add("b", "item", interval=10.0, now=0.0)
    schedule.remove("b")
    assert due_keys(schedule, 0.0) == ["a"]
    schedule.update("a", "new", interval=10.0, now=3.0)
    assert schedule.next_due() == 10.0 and schedule.get("a").item == "new"  # type: ignore[union-attr]
    schedule.update("a", "new", interval=2.0, now=3.0)  # a shorter interval applies now
    assert schedule.next_due() == 5.0
    assert due_keys(schedule, 5.0) == ["a"]
    # At 10.0 it comes due once, for its 7.0 slot: the stale 10.0 slot is gone.
    assert [(e.key, due, missed) for e, due, missed in schedule.pop_due(10.0)] == [("a", 7.0, 1)]
    assert len(schedule) == 1


def test_nothing_scheduled() -> None:
    schedule: Schedule[str] = Schedule(spread=1.0)
    assert schedule.next_due() is None
    assert due_keys(schedule, 1e9) == []


def test_what_runs_leave_in_the_heap_is_not_for_the_garbage_collector() -> None:
    """Each run pushes the check's next due time. What it pushes holds no object the
    collector follows, so after its first look the collector tracks none of it: on a
    saturated watcher those were most of what its full collections went through."""
    schedule: Schedule[str] = Schedule(spread=1.0, rng=random.Random(5))
    for index in range(200):
        schedule.add(f"c{index}", "item", interval=1.0, now=0.0)
    ran = sum(len(due_keys(schedule, now / 10)) for now in range(1, 40))
    assert ran >= 600
    schedule.remove("c0")
    schedule.update("c1", "item", 2.0, now=4.0)  # a reload's new interval: pushed again
    gc.collect()
    assert not any(gc.is_tracked(item) for item in schedule._heap)
    assert "c0" not in due_keys(schedule, 100.0)  # and the bookkeeping still holds
