"""The notification policy, pure: state changes and results in, outbox entries out, at made-up times."""

from __future__ import annotations

from pathlib import Path

from fraiseql_checks.checks import CheckInfo
from fraiseql_checks.notify.notifier import Notifier
from fraiseql_checks.notify.policy import Policy
from fraiseql_checks.notify.settings import NotifySettings, Route
from fraiseql_checks.outbox import Kind, OutboxEntry, Status
from fraiseql_checks.result import Outcome, Result
from fraiseql_checks.spec import make_spec
from fraiseql_checks.states import State, StateChange, StateRecord

T0 = 1_800_000_000.0
GROUP_WAIT = 10.0
REPEAT = 3600.0


def receivers(*names: str) -> dict[str, Notifier]:
    return {name: Notifier(name, {}) for name in names}


def settings(*names: str, **options: object) -> NotifySettings:
    values: dict[str, object] = {
        "receivers": receivers(*(names or ("chat",))),
        "default": tuple(names or ("chat",)),
        "group_wait": GROUP_WAIT,
        "repeat_interval": REPEAT,
        "runbook_base_url": "https://runbooks.example.com/",
    }
    values.update(options)
    return NotifySettings(**values)  # type: ignore[arg-type]


def info(name: str, *, targets: tuple[str, ...] = (), interval: float = 30.0, **spec: object) -> CheckInfo:
    severity = str(spec.pop("severity", "warning"))
    return CheckInfo(
        id=f"checks/health/check_{name}.py::{name}",
        name=name,
        function_name=name,
        path=Path(f"checks/health/check_{name}.py"),
        spec=make_spec(**spec),  # type: ignore[arg-type]
        severity=severity,
        interval=interval,
        targets=targets,
    )


def change(check: CheckInfo, at: float, state: State, previous: State, **extra: object) -> StateChange:
    return StateChange(check.id, at, previous, state, **extra)  # type: ignore[arg-type]


def fails(policy: Policy, check: CheckInfo, at: float, message: str = "boom") -> list[OutboxEntry]:
    previous = policy.state.get(check.id, State.UNKNOWN)
    return policy.changed(change(check, at, State.FAILING, previous, message=message), at)


def passes(policy: Policy, check: CheckInfo, at: float) -> list[OutboxEntry]:
    previous = policy.state.get(check.id, State.UNKNOWN)
    return policy.changed(change(check, at, State.PASSING, previous), at)


def result(check: CheckInfo, at: float, *, unreachable: str = "") -> Result:
    outcome = Outcome.ERROR if unreachable else Outcome.PASSED
    return Result(check.id, check.name, outcome, started_at=at, unreachable=unreachable)


def messages(entries: list[OutboxEntry]) -> dict[str, set[float]]:
    """Receiver → the distinct send times of its pending entries: one per message."""
    found: dict[str, set[float]] = {}
    for entry in entries:
        if entry.status is Status.PENDING:
            found.setdefault(entry.receiver, set()).add(entry.not_before)
    return found


def kinds(entries: list[OutboxEntry]) -> list[tuple[str, Kind]]:
    return [(entry.receiver, entry.kind) for entry in entries]


def test_a_change_to_failing_is_announced_and_its_recovery_too() -> None:
    check = info("db_answers", severity="critical", runbook="docs/runbooks/database-down.md")
    policy = Policy(settings())
    policy.set_checks([check])
    assert passes(policy, check, T0) == []  # unknown → passing: nothing to say
    firing = fails(policy, check, T0 + 30, message="connection refused")
    assert kinds(firing) == [("chat", Kind.FIRING)]
    event = firing[0].event
    assert event["severity"] == "critical" and event["message"] == "connection refused"
    assert event["runbook_url"] == "https://runbooks.example.com/docs/runbooks/database-down.md"
    assert firing[0].not_before == T0 + 30 + GROUP_WAIT
    assert kinds(passes(policy, check, T0 + 90)) == [("chat", Kind.RESOLVED)]


def test_a_check_that_was_never_announced_failing_recovers_silently() -> None:
    check = info("quiet")
    policy = Policy(settings())
    policy.set_checks([check])
    assert passes(policy, check, T0) == []
    assert policy.changed(change(check, T0 + 1, State.PASSING, State.UNKNOWN), T0 + 1) == []


def test_reminders_come_every_repeat_interval_while_failing_and_stop_once_it_passes() -> None:
    check = info("lag")
    policy = Policy(settings())
    policy.set_checks([check])
    fails(policy, check, T0)
    assert policy.tick(T0 + REPEAT - 1, set()) == []
    assert kinds(policy.tick(T0 + REPEAT, set())) == [("chat", Kind.REMINDER)]
    assert policy.tick(T0 + REPEAT + 60, set()) == []
    assert kinds(policy.tick(T0 + 2 * REPEAT, set())) == [("chat", Kind.REMINDER)]
    passes(policy, check, T0 + 2 * REPEAT + 1)
    assert policy.tick(T0 + 4 * REPEAT, set()) == []


def test_no_reminders_when_repeat_interval_is_zero() -> None:
    check = info("lag")
    policy = Policy(settings(repeat_interval=0.0))
    policy.set_checks([check])
    fails(policy, check, T0)
    assert policy.tick(T0 + 100 * REPEAT, set()) == []


def test_flapping_is_told_once_then_quiet_until_it_settles() -> None:
    check = info("flappy")
    policy = Policy(settings())
    policy.set_checks([check])
    fails(policy, check, T0)
    flapping = policy.changed(change(check, T0 + 60, State.FLAPPING, State.FAILING), T0 + 60)
    assert kinds(flapping) == [("chat", Kind.FLAPPING)]
    assert policy.tick(T0 + 120, set()) == []
    settled = policy.changed(change(check, T0 + 600, State.PASSING, State.FLAPPING), T0 + 600)
    assert kinds(settled) == [("chat", Kind.SETTLED)]
    assert settled[0].event["state"] == "passing"


def test_nothing_while_a_silence_holds_then_still_failing_or_resolved_during_the_silence() -> None:
    broken, healed = info("broken"), info("healed")
    policy = Policy(settings())
    policy.set_checks([broken, healed])
    fails(policy, healed, T0)  # announced before the maintenance window
    held = {broken.id, healed.id}
    assert policy.tick(T0 + 5, held) == []
    assert policy.changed(change(broken, T0 + 10, State.FAILING, State.PASSING, silenced=True), T0 + 10) == []
    assert policy.changed(change(healed, T0 + 20, State.PASSING, State.FAILING, silenced=True), T0 + 20) == []
    assert policy.tick(T0 + REPEAT + 30, held) == []  # no reminder while silenced either
    ended = policy.tick(T0 + REPEAT + 40, set())
    assert sorted((entry.check_id, entry.kind) for entry in ended) == [
        (broken.id, Kind.STILL_FAILING),
        (healed.id, Kind.RESOLVED_DURING_SILENCE),
    ]
    assert policy.tick(T0 + REPEAT + 50, set()) == []  # told once


def test_a_silence_over_a_check_that_stayed_passing_ends_without_a_word() -> None:
    check = info("fine")
    policy = Policy(settings())
    policy.set_checks([check])
    passes(policy, check, T0)
    policy.tick(T0 + 1, {check.id})
    assert policy.tick(T0 + 100, set()) == []


def test_thirty_checks_blocked_by_one_database_make_one_message_per_receiver() -> None:
    checks = [info(f"query_{n}", targets=("database",), severity="critical") for n in range(30)]
    unrelated = info("disk", targets=())
    policy = Policy(settings("chat", "pager"))
    policy.set_checks([*checks, unrelated])
    entries: list[OutboxEntry] = []
    for n, check in enumerate(checks):  # the runs fail one after another as their intervals come
        at = T0 + n * 0.2
        entries += policy.observe(result(check, at, unreachable="database"), at)
        entries += fails(policy, check, at, message="connection refused")
    assert messages(entries) == {"chat": {T0 + GROUP_WAIT}, "pager": {T0 + GROUP_WAIT}}
    assert {entry.root_cause for entry in entries} == {"database"}
    assert len(entries) == 60

    # after the first message went, more checks blocked by the same cause are folded, not sent
    late = info("query_late", targets=("database",))
    policy.set_checks([*checks, unrelated, late])
    at = T0 + GROUP_WAIT + 5
    folded = policy.observe(result(late, at, unreachable="database"), at) + fails(policy, late, at)
    assert {entry.status for entry in folded} == {Status.FOLDED}
    # a failure without the cause still speaks for itself
    assert messages(fails(policy, unrelated, at)) == {"chat": {at + GROUP_WAIT}, "pager": {at + GROUP_WAIT}}

    # the database answers again: once every check that could not reach it has reached it,
    # one "reachable again" per receiver, naming every affected check
    back = T0 + 300
    evidence = [*checks, late]
    for n, check in enumerate(evidence[:-1]):
        assert policy.observe(result(check, back + n * 0.01), back + n * 0.01) == []
    recovered = policy.observe(result(evidence[-1], back + 1), back + 1)
    assert [(entry.receiver, entry.kind) for entry in recovered] == [
        ("chat", Kind.CAUSE_RESOLVED),
        ("pager", Kind.CAUSE_RESOLVED),
    ]
    assert len(recovered[0].event["affected"]) == 31
    # the checks' own recoveries are folded into that
    for n, check in enumerate(evidence):
        for entry in passes(policy, check, back + 2 + n * 0.1):
            assert entry.status is Status.FOLDED


def test_a_check_still_failing_after_its_cause_recovered_is_announced_on_its_own() -> None:
    stuck = info("stuck", targets=("database",), interval=10.0)
    policy = Policy(settings())
    policy.set_checks([stuck])
    policy.observe(result(stuck, T0, unreachable="database"), T0)
    assert [entry.root_cause for entry in fails(policy, stuck, T0)] == ["database"]
    policy.changed(change(stuck, T0 + 20, State.FAILING, State.FAILING), T0 + 20)
    back = T0 + 60
    policy.observe(result(stuck, back), back)  # reached the database, yet still fails (a bad query)
    assert policy.tick(back + 1, set()) == []  # it gets time to recover first
    later = policy.tick(back + 10 * 3 + GROUP_WAIT, set())
    assert kinds(later) == [("chat", Kind.FIRING)]
    assert later[0].root_cause == "" and "became reachable again" in later[0].event["reason"]


def test_changes_within_group_wait_share_one_message_and_later_ones_start_the_next() -> None:
    a, b, c = info("a"), info("b"), info("c")
    policy = Policy(settings())
    policy.set_checks([a, b, c])
    first = fails(policy, a, T0) + fails(policy, b, T0 + GROUP_WAIT - 1)
    assert messages(first) == {"chat": {T0 + GROUP_WAIT}}
    second = fails(policy, c, T0 + GROUP_WAIT + 1)
    assert messages(second) == {"chat": {T0 + 2 * GROUP_WAIT + 1}}


def test_routes_pick_receivers_first_match_wins_and_check_notify_overrides() -> None:
    routed = settings(
        "chat",
        "pager",
        "mail",
        routes=(
            Route({"severity": ("critical",)}, ("pager", "chat")),
            Route({"tags": ("audit",)}, ("mail",), continue_=True),
            Route({"tags": ("audit",)}, ("chat",)),
        ),
        default=("chat",),
    )
    assert routed.receivers_for(info("x", severity="critical", tags=["audit"])) == ("pager", "chat")
    assert routed.receivers_for(info("y", tags=["audit"])) == ("mail", "chat")
    assert routed.receivers_for(info("z")) == ("chat",)
    assert routed.receivers_for(info("w", severity="critical", notify=["mail"])) == ("mail",)
    assert routed.receivers_for(info("v", notify=[])) == ()


def test_secrets_in_a_check_message_are_masked_and_long_messages_cut() -> None:
    check = info("leaky")
    policy = Policy(settings(), mask=lambda text: text.replace("hunter2", "***"))
    policy.set_checks([check])
    (entry,) = fails(policy, check, T0, message="login with hunter2 failed " + "x" * 5000)
    assert "hunter2" not in entry.event["message"] and "***" in entry.event["message"]
    assert len(entry.event["message"]) <= 1000 and entry.event["message"].endswith("(cut)")


def test_after_a_restart_a_recovery_is_still_announced_and_nothing_is_repeated() -> None:
    check = info("db")
    before = Policy(settings())
    before.set_checks([check])
    (firing,) = fails(before, check, T0)
    sent = OutboxEntry(**{**firing.__dict__, "status": Status.SENT})

    after = Policy(settings())
    after.set_checks([check])
    record = StateRecord(check_id=check.id, base=State.FAILING, state=State.FAILING, since=T0)
    after.restore({check.id: record}, [sent])
    assert after.tick(T0 + 60, set()) == []  # no second firing message
    assert kinds(after.tick(T0 + REPEAT, set())) == [("chat", Kind.REMINDER)]  # the reminder is not forgotten
    assert kinds(passes(after, check, T0 + REPEAT + 5)) == [("chat", Kind.RESOLVED)]


def test_no_receivers_no_entries() -> None:
    check = info("db")
    policy = Policy(NotifySettings(receivers={}))
    policy.set_checks([check])
    assert fails(policy, check, T0) == []
    assert policy.tick(T0 + 10 * REPEAT, set()) == []


def test_a_check_that_moves_to_another_watcher_takes_its_announcements_and_ends_no_incident_twice() -> None:
    """A cluster: two checks blocked by the database on watcher A; one moves to watcher B
    (a join). A no longer reminds of it or of an incident it cannot see end; B reminds of
    and resolves the moved check on its own, without announcing it again."""
    moved = info("moved", targets=("database",), interval=10.0)
    stays = info("stays", targets=("database",), interval=10.0)
    a = Policy(settings())
    a.set_checks([moved, stays])
    first = a.observe(result(moved, T0, unreachable="database"), T0) + fails(a, moved, T0)
    first += fails(a, stays, T0 + GROUP_WAIT + 1)  # blocked by its declared target: folded
    assert [(e.check_id, e.status) for e in first] == [(moved.id, Status.PENDING), (stays.id, Status.FOLDED)]

    # the join: `moved` goes to B. A forgets it; the incident only `moved` held open is dropped
    a.set_checks([stays])
    a.disown([moved.id])
    assert a.incidents == {}
    later = T0 + GROUP_WAIT + 1 + REPEAT
    assert [(e.check_id, e.kind) for e in a.tick(later, set())] == [(stays.id, Kind.REMINDER)]  # on its own now
    assert kinds(passes(a, stays, later + 5)) == [("chat", Kind.RESOLVED)]  # its recovery is not lost
    assert a.tick(later + 3 * REPEAT, set()) == []  # no reminders of a "still unreachable" database it cannot see

    b = Policy(settings())
    b.set_checks([moved])
    record = StateRecord(check_id=moved.id, base=State.FAILING, state=State.FAILING, since=T0)
    history = [
        OutboxEntry(**{**entry.__dict__, "status": Status.SENT}) for entry in first if entry.check_id == moved.id
    ]
    b.adopt([moved.id], {moved.id: record}, history)
    assert b.tick(T0 + 60, set()) == []  # announced already: nothing again
    assert kinds(b.tick(T0 + REPEAT, set())) == [("chat", Kind.REMINDER)]
    assert kinds(passes(b, moved, T0 + REPEAT + 5)) == [("chat", Kind.RESOLVED)]


def test_a_folded_check_taken_over_is_reminded_of_on_its_own() -> None:
    check = info("folded", targets=("database",), interval=10.0)
    opener = info("opener", targets=("database",), interval=10.0)
    a = Policy(settings())
    a.set_checks([check, opener])
    a.observe(result(opener, T0, unreachable="database"), T0)
    (first,) = fails(a, opener, T0)
    late = T0 + GROUP_WAIT + 1
    (folded,) = fails(a, check, late)
    assert first.status is Status.PENDING and folded.status is Status.FOLDED

    b = Policy(settings())
    b.set_checks([check])
    record = StateRecord(check_id=check.id, base=State.FAILING, state=State.FAILING, since=late)
    b.adopt([check.id], {check.id: record}, [folded])
    assert b.tick(late + 60, set()) == []  # told already, as part of its cause
    assert kinds(b.tick(late + REPEAT, set())) == [("chat", Kind.REMINDER)]  # B never saw the database down
