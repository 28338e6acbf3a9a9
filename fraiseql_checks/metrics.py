"""The metrics the watcher exports: one definition each, read by every consumer.

The exporter renders these; the dashboard and alert-rule generators read the same
definitions, so a renamed metric cannot leave a panel or a rule pointing at
nothing. Names follow Prometheus conventions: the ``fraiseql_check_`` namespace,
``_total`` for counters, base units (``_seconds``), ``_info`` for info metrics.
``docs/metrics-reference.md`` lists them; a test keeps it in step with this file.
"""

from __future__ import annotations

import dataclasses

from fraiseql_checks.metrictypes import TOTAL, Family, family_of
from fraiseql_checks.metrictypes import Kind as Kind  # re-exported: metrics.Kind

NAMESPACE = "fraiseql_check_"


@dataclasses.dataclass(frozen=True)
class Metric(Family):
    """One metric family this tool exports: its full name, help text, type, unit and label names."""

    name: str
    help: str
    kind: Kind
    labels: tuple[str, ...] = ()
    #: The base unit the name ends with (``seconds``), or ``""`` for counts and ratios.
    unit: str = ""
    #: Upper bounds of a histogram's buckets (``+Inf`` is implied).
    buckets: tuple[float, ...] = ()
    #: ``True`` when the family has a series per check (a ``check`` label).
    per_check: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.name.startswith(NAMESPACE) and not self.name.startswith("process_"):
            raise ValueError(f"metric {self.name!r} is outside the {NAMESPACE} namespace")
        if self.kind is Kind.COUNTER and not self.name.endswith(TOTAL):
            raise ValueError(f"counter {self.name!r} must end with {TOTAL}")
        if self.unit and self.unit not in self.name:
            raise ValueError(f"metric {self.name!r} must name its unit {self.unit!r}")


#: The values of ``fraiseql_check_state``; dashboards map them back to words.
STATE_VALUES: dict[str, int] = {"unknown": -1, "passing": 0, "failing": 1, "flapping": 2}

#: Check durations: from a local ``select 1`` to a slow remote probe.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: How late a run starts after it was due: fine below 20 ms, where the goal is.
LATENESS_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)

CHECK = ("check",)

# ---- per check ------------------------------------------------------------------------

INFO = Metric(
    "fraiseql_check_info",
    "Metadata of a check (always 1): severity, suite, interval, runbook link (joined to "
    "notify.runbook_base_url), owner and its own labels.",
    Kind.GAUGE,
    ("check", "severity", "suite", "interval", "runbook", "owner"),
    per_check=True,
)
UP = Metric(
    "fraiseql_check_up",
    "1 if the check's last run passed, 0 if it failed or errored (a skipped run changes nothing).",
    Kind.GAUGE,
    CHECK,
    per_check=True,
)
RUNS = Metric(
    "fraiseql_check_runs_total",
    "Runs of the check, by outcome (passed, failed, error, skipped).",
    Kind.COUNTER,
    ("check", "outcome"),
    per_check=True,
)
DURATION = Metric(
    "fraiseql_check_duration_seconds",
    "How long runs of the check took, fixtures included.",
    Kind.HISTOGRAM,
    CHECK,
    unit="seconds",
    buckets=DURATION_BUCKETS,
    per_check=True,
)
LAST_RUN = Metric(
    "fraiseql_check_last_run_timestamp_seconds",
    "When the check's last run started, in seconds since the epoch.",
    Kind.GAUGE,
    CHECK,
    unit="seconds",
    per_check=True,
)
INTERVAL = Metric(
    "fraiseql_check_interval_seconds",
    "The check's interval: how often it is meant to run.",
    Kind.GAUGE,
    CHECK,
    unit="seconds",
    per_check=True,
)
CONSECUTIVE_FAILURES = Metric(
    "fraiseql_check_consecutive_failures",
    "Failed or errored runs of the check in a row (0 after a passing run).",
    Kind.GAUGE,
    CHECK,
    per_check=True,
)
STATE = Metric(
    "fraiseql_check_state",
    "The check's state: -1 unknown (not enough runs yet), 0 passing, 1 failing, 2 flapping.",
    Kind.GAUGE,
    CHECK,
    per_check=True,
)
SILENCED = Metric(
    "fraiseql_check_silenced",
    "1 while a maintenance window covers the check (it still runs and is stored).",
    Kind.GAUGE,
    CHECK,
    per_check=True,
)
OVERLAPS = Metric(
    "fraiseql_check_skipped_overlapping_runs_total",
    "Runs not started because the check's previous run was still going when the next was due.",
    Kind.COUNTER,
    CHECK,
    per_check=True,
)
VALUE = Metric(
    "fraiseql_check_value",
    "A value the check measured and recorded with fraiseql_checks.record(name, value) on its last run.",
    Kind.GAUGE,
    ("check", "name"),
    per_check=True,
)

# ---- the watcher itself -----------------------------------------------------------------

LATENESS = Metric(
    "fraiseql_check_scheduling_lateness_seconds",
    "How long after its due time each run started (waiting for a concurrency slot included).",
    Kind.HISTOGRAM,
    unit="seconds",
    buckets=LATENESS_BUCKETS,
)
IN_PROGRESS = Metric(
    "fraiseql_check_runs_in_progress",
    "Check runs going on now (including those waiting for a concurrency slot).",
    Kind.GAUGE,
)
#: The watcher reads as past its capacity for this long after a slot was skipped because
#: the previous run was still waiting for a concurrency slot.
PAST_CAPACITY_FOR = 60.0
PAST_CAPACITY = Metric(
    "fraiseql_check_past_capacity",
    f"1 while the watcher is past its capacity: in the last {PAST_CAPACITY_FOR:g}s a run waited a whole "
    "interval for a concurrency slot, or was in flight a whole interval longer than it ran (waiting in its "
    "worker or for the watcher), so the check's next slot was skipped.",
    Kind.GAUGE,
)
CAPACITY_SKIPS = Metric(
    "fraiseql_check_capacity_skipped_runs_total",
    "Slots skipped because the previous run was still waiting: for a concurrency slot, or in flight longer "
    "than it ran (past capacity; also counted per check in fraiseql_check_skipped_overlapping_runs_total).",
    Kind.COUNTER,
)
LATE_SKIPS = Metric(
    "fraiseql_check_late_skipped_runs_total",
    "Slots that passed while the watcher was a whole interval late to hand the check's run out (its event loop"
    " held, the process stopped, a reload; again and again: its core saturated); the run goes out once, late,"
    " and the slots between are not made up.",
    Kind.COUNTER,
)
SCHEDULED = Metric("fraiseql_check_scheduled_checks", "Checks the watcher runs on their intervals.", Kind.GAUGE)
COLLECTION_ERRORS = Metric(
    "fraiseql_check_collection_errors",
    "Check files (or conftests) that failed to collect at the last (re)load; their previous version keeps running.",
    Kind.GAUGE,
)
RELOADS = Metric(
    "fraiseql_check_reloads_total", "Re-collections of the checks (SIGHUP), by result.", Kind.COUNTER, ("result",)
)
FIXTURE_REBUILDS = Metric(
    "fraiseql_check_fixture_rebuilds_total",
    "Module or session fixture values dropped to be set up again (a failed set-up, a lost connection).",
    Kind.COUNTER,
    ("fixture",),
)
LOOP_BLOCKED = Metric(
    "fraiseql_check_event_loop_blocked_total",
    "Runs interrupted for blocking the event loop past their timeout (a sync call in an async check).",
    Kind.COUNTER,
)
LONGEST_BLOCK = Metric(
    "fraiseql_check_event_loop_longest_block_seconds",
    "The longest time a check held a worker's event loop since the watcher started.",
    Kind.GAUGE,
    unit="seconds",
)
LOOP_HELD = Metric(
    "fraiseql_check_event_loop_held_total",
    "Times a check held its worker's event loop longer than 100 ms (CPU work or a blocking call in an"
    " async def), delaying the checks beside it; a series only for checks that did.",
    Kind.COUNTER,
    CHECK,
)
ISOLATED = Metric(
    "fraiseql_check_isolated",
    "1 for a check moved to a worker process of its own because it ended a worker or kept holding the"
    " event loop; a series only for such checks.",
    Kind.GAUGE,
    CHECK,
)
WORKER_UP = Metric(
    "fraiseql_check_worker_up",
    "1 while the worker process is running (collecting or running checks), 0 while it is being replaced.",
    Kind.GAUGE,
    ("worker",),
)
WORKER_CHECKS = Metric("fraiseql_check_worker_checks", "Checks the worker process runs.", Kind.GAUGE, ("worker",))
WORKER_RESTARTS = Metric(
    "fraiseql_check_worker_restarts_total",
    "Worker processes replaced, by reason: exited (a crash, os._exit), unresponsive (its event loop held"
    " past the checks' timeouts), memory (above worker_memory_limit), import (a file whose import ended it"
    " or never finished).",
    Kind.COUNTER,
    ("worker", "reason"),
)
WORKER_MEMORY = Metric(
    "fraiseql_check_worker_resident_memory_bytes",
    "Resident memory of the worker process.",
    Kind.GAUGE,
    ("worker",),
    unit="bytes",
)
WORKER_CPU = Metric(
    "fraiseql_check_worker_cpu_seconds_total",
    "CPU time used by the worker process (and the ones it replaced), user and system.",
    Kind.COUNTER,
    ("worker",),
    unit="seconds",
)
HTTP_OPEN = Metric(
    "fraiseql_check_http_connections",
    "Connections open now to the watcher's HTTP server (at most its cap of 256).",
    Kind.GAUGE,
)
HTTP_ACCEPTED = Metric(
    "fraiseql_check_http_connections_accepted_total",
    "Connections the watcher's HTTP server accepted.",
    Kind.COUNTER,
)
HTTP_EVICTED = Metric(
    "fraiseql_check_http_connections_evicted_total",
    "Idle or half-sent connections closed to make room for a new one at the cap.",
    Kind.COUNTER,
)
HTTP_REJECTED = Metric(
    "fraiseql_check_http_connections_rejected_total",
    "Connections answered 503 because every connection at the cap was busy answering.",
    Kind.COUNTER,
)
HTTP_TIMEOUTS = Metric(
    "fraiseql_check_http_request_timeouts_total",
    "Requests whose head did not arrive in time, or whose client stopped reading the answer.",
    Kind.COUNTER,
)
STORE_BACKLOG = Metric(
    "fraiseql_check_store_backlog",
    "Results and state changes waiting in memory to be written to the store.",
    Kind.GAUGE,
)
STORE_DROPPED = Metric(
    "fraiseql_check_store_dropped_total",
    "Results and state changes dropped because the store was away and the in-memory buffer was full.",
    Kind.COUNTER,
)
STORE_WRITTEN = Metric(
    "fraiseql_check_store_written_total", "Results and state changes written to the store.", Kind.COUNTER
)
STORE_ERRORS = Metric(
    "fraiseql_check_store_write_errors_total", "Failed attempts to write a batch to the store.", Kind.COUNTER
)
STORE_UP = Metric("fraiseql_check_store_up", "1 if the last write to the store succeeded.", Kind.GAUGE)
BUILD_INFO = Metric(
    "fraiseql_check_build_info", "The version of fraiseql-checks running (always 1).", Kind.GAUGE, ("version",)
)
START_TIME = Metric(
    "fraiseql_check_start_time_seconds",
    "When the watcher started, in seconds since the epoch.",
    Kind.GAUGE,
    unit="seconds",
)
# The standard process metrics of the watcher's own process, with the names and help
# texts of prometheus_client's ProcessCollector (what every Prometheus exporter shows).
PROCESS_VIRTUAL_MEMORY = Metric(
    "process_virtual_memory_bytes", "Virtual memory size in bytes.", Kind.GAUGE, unit="bytes"
)
PROCESS_RSS = Metric("process_resident_memory_bytes", "Resident memory size in bytes.", Kind.GAUGE, unit="bytes")
PROCESS_START_TIME = Metric(
    "process_start_time_seconds", "Start time of the process since unix epoch in seconds.", Kind.GAUGE, unit="seconds"
)
PROCESS_CPU = Metric(
    "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", Kind.COUNTER, unit="seconds"
)
PROCESS_OPEN_FDS = Metric("process_open_fds", "Number of open file descriptors.", Kind.GAUGE)
PROCESS_MAX_FDS = Metric("process_max_fds", "Maximum number of open file descriptors.", Kind.GAUGE)
#: In the order ProcessCollector yields them.
PROCESS: tuple[Metric, ...] = (
    PROCESS_VIRTUAL_MEMORY,
    PROCESS_RSS,
    PROCESS_START_TIME,
    PROCESS_CPU,
    PROCESS_OPEN_FDS,
    PROCESS_MAX_FDS,
)

# ---- notifications (rendered by the notify plugin, for each configured receiver) ---------

RECEIVER = ("receiver",)
NOTIFY_SENT = Metric(
    "fraiseql_check_notifications_sent_total",
    "Messages the receiver accepted (one message may carry several events).",
    Kind.COUNTER,
    RECEIVER,
)
NOTIFY_FAILED = Metric(
    "fraiseql_check_notifications_failed_total",
    "Deliveries to the receiver that failed and will be tried again (a timeout, a 5xx, a 429).",
    Kind.COUNTER,
    RECEIVER,
)
NOTIFY_DEAD = Metric(
    "fraiseql_check_notifications_dead_total",
    "Events given up on: the receiver refused them for good (a 4xx) or kept failing past give_up_after.",
    Kind.COUNTER,
    RECEIVER,
)
NOTIFY_PENDING = Metric(
    "fraiseql_check_notifications_pending",
    "Events waiting to go to the receiver (in their group wait, or to be retried).",
    Kind.GAUGE,
    RECEIVER,
)
NOTIFY_OLDEST = Metric(
    "fraiseql_check_notifications_oldest_pending_age_seconds",
    "How long the oldest event waiting for the receiver has waited; 0 when none waits.",
    Kind.GAUGE,
    RECEIVER,
    unit="seconds",
)
NOTIFY: tuple[Metric, ...] = (NOTIFY_SENT, NOTIFY_FAILED, NOTIFY_DEAD, NOTIFY_PENDING, NOTIFY_OLDEST)

# ---- high availability (rendered by watch.cluster, when watchers share a PostgreSQL store) -

CLUSTER_MEMBERS = Metric(
    "fraiseql_check_cluster_members",
    "Live watchers of this watcher's cluster, as its last heartbeat saw them (itself included).",
    Kind.GAUGE,
)
CLUSTER_OWNED = Metric(
    "fraiseql_check_cluster_owned_checks",
    "Checks this watcher runs for its cluster; every check's series come from its owner only.",
    Kind.GAUGE,
)
CLUSTER_LEASE_AGE = Metric(
    "fraiseql_check_cluster_lease_age_seconds",
    "Seconds since this watcher last renewed its lease (+Inf before it first joined).",
    Kind.GAUGE,
    unit="seconds",
)
CLUSTER_TAKEOVERS = Metric(
    "fraiseql_check_cluster_takeovers_total",
    "Checks this watcher took over from a watcher whose lease expired or that left.",
    Kind.COUNTER,
)
CLUSTER: tuple[Metric, ...] = (CLUSTER_MEMBERS, CLUSTER_OWNED, CLUSTER_LEASE_AGE, CLUSTER_TAKEOVERS)

# ---- SLOs (rendered by the SLO plugin, for the checks and SLOs that have one) -------------

SLO_SECONDS = Metric(
    "fraiseql_check_slo_seconds_total",
    "Time a check with an SLO passed (outcome good) or failed or errored (bad): each run not silenced"
    " by a maintenance window counts for its interval.",
    Kind.COUNTER,
    ("check", "outcome"),
    unit="seconds",
    per_check=True,
)
SLO_OBJECTIVE = Metric(
    "fraiseql_check_slo_objective_ratio",
    "The SLO's objective, e.g. 0.999 (check is empty for a request SLO).",
    Kind.GAUGE,
    ("slo", "check"),
)
SLO_SLI = Metric(
    "fraiseql_check_slo_sli_ratio",
    'The SLI (share of good time or events) over a window; window="period" is the SLO\'s period so far.',
    Kind.GAUGE,
    ("slo", "check", "window"),
)
SLO_BUDGET = Metric(
    "fraiseql_check_slo_error_budget_remaining_ratio",
    "Error budget left over the SLO's period: 1 untouched, 0 spent, negative overspent.",
    Kind.GAUGE,
    ("slo", "check"),
)
SLO_BURN = Metric(
    "fraiseql_check_slo_burn_rate",
    "How fast the error budget burns over a window: the error ratio divided by (1 - objective); 1 spends it"
    " exactly over the period.",
    Kind.GAUGE,
    ("slo", "check", "window"),
)
SLO_UPDATED = Metric(
    "fraiseql_check_slo_last_update_timestamp_seconds",
    "When the SLO gauges were last computed, in seconds since the epoch.",
    Kind.GAUGE,
    unit="seconds",
)
SLO: tuple[Metric, ...] = (SLO_SECONDS, SLO_OBJECTIVE, SLO_SLI, SLO_BUDGET, SLO_BURN, SLO_UPDATED)

PER_CHECK: tuple[Metric, ...] = (
    INFO,
    UP,
    RUNS,
    DURATION,
    LAST_RUN,
    INTERVAL,
    CONSECUTIVE_FAILURES,
    STATE,
    SILENCED,
    OVERLAPS,
    VALUE,
)
WATCHER: tuple[Metric, ...] = (
    LATENESS,
    IN_PROGRESS,
    PAST_CAPACITY,
    CAPACITY_SKIPS,
    LATE_SKIPS,
    SCHEDULED,
    COLLECTION_ERRORS,
    RELOADS,
    FIXTURE_REBUILDS,
    LOOP_BLOCKED,
    LONGEST_BLOCK,
    LOOP_HELD,
    ISOLATED,
    WORKER_UP,
    WORKER_CHECKS,
    WORKER_RESTARTS,
    WORKER_MEMORY,
    WORKER_CPU,
    HTTP_OPEN,
    HTTP_ACCEPTED,
    HTTP_EVICTED,
    HTTP_REJECTED,
    HTTP_TIMEOUTS,
    STORE_BACKLOG,
    STORE_DROPPED,
    STORE_WRITTEN,
    STORE_ERRORS,
    STORE_UP,
    BUILD_INFO,
    START_TIME,
    *PROCESS,
)
#: Every metric the watcher exports, in the order ``/metrics`` writes them.
ALL: tuple[Metric, ...] = PER_CHECK + WATCHER + NOTIFY + CLUSTER + SLO


def by_name(name: str) -> Metric:
    """The definition of ``name`` (a histogram's ``_bucket``/``_sum``/``_count`` series too)."""
    metric = family_of(name, ALL)
    if metric is None:
        raise KeyError(f"no metric {name!r} is exported by fraiseql-check --watch")
    return metric
