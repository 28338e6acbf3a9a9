"""The Statuspage-style summary (``/api/v2/summary.json``), so status aggregators can read us.

The shape is Atlassian Statuspage's public ``summary.json``: ``page``, ``components``
(one per check, grouped by suite: a group component per suite), ``status`` (the
worst indicator), the unresolved ``incidents`` (one per failing or flapping check)
and the ``scheduled_maintenances`` in progress or to come. A check maps to a
component status as: passing or not run yet → ``operational``, flapping →
``degraded_performance``, failing → ``partial_outage`` (``major_outage`` for a
``critical`` check), and a silenced one under a maintenance window → ``under_maintenance``.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

from fraiseql_checks.api.endpoint import iso
from fraiseql_checks.status.page import notices, watched_checks

if TYPE_CHECKING:
    from fraiseql_checks.watch.watcher import Watched, Watcher

PAGE_ID = "fraiseql-check"
COMPONENT_STATUSES = ["operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"]
INDICATORS = {
    "none": "All Systems Operational",
    "minor": "Minor Service Outage",
    "major": "Partial System Outage",
    "critical": "Major System Outage",
}
_IMPACT = {"degraded_performance": "minor", "partial_outage": "major", "major_outage": "critical"}
_RANK = ["none", "minor", "major", "critical"]


def component_status(watcher: Watcher, watched: Watched, now: float) -> str:
    state = watched.state.state.value
    if watched.windows and any(w.active(now) for w in watched.windows):
        return "under_maintenance"
    if state == "flapping":
        return "degraded_performance"
    if state == "failing":
        return "major_outage" if watched.check.severity == "critical" else "partial_outage"
    return "operational"


def short_id(text: str) -> str:
    """A stable opaque id (Statuspage's ids are 12 lowercase characters)."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def summary(watcher: Watcher, name: str = "fraiseql-check", url: str = "") -> dict[str, Any]:
    now = time.time()
    checked = watched_checks(watcher)
    updated = max((w.state.updated_at or 0.0 for w in checked), default=0.0) or now
    components: list[dict[str, Any]] = []
    incidents: list[dict[str, Any]] = []
    groups: dict[str, list[str]] = {}
    worst = "none"
    for position, watched in enumerate(checked, start=1):
        check, state = watched.check, watched.state
        status = component_status(watcher, watched, now)
        group = check.suite or "checks"
        group_id = short_id("group:" + group)
        groups.setdefault(group, []).append(check.id)
        components.append(
            {
                "id": check.id,
                "name": check.name,
                "status": status,
                "created_at": iso(watcher.started),
                "updated_at": iso(state.updated_at or now),
                "position": position,
                "description": check.description or None,
                "showcase": True,
                "start_date": None,
                "group_id": group_id,
                "page_id": PAGE_ID,
                "group": False,
                "only_show_if_degraded": False,
            }
        )
        impact = _IMPACT.get(status)
        if impact is None:
            continue
        if _RANK.index(impact) > _RANK.index(worst):
            worst = impact
        since = iso(state.since or now)
        incident_id = short_id(f"incident:{check.id}:{state.since}")
        incidents.append(
            {
                "id": incident_id,
                "name": f"{check.name} is {state.state.value}",
                "status": "investigating",
                "created_at": since,
                "updated_at": iso(state.updated_at or now),
                "monitoring_at": None,
                "resolved_at": None,
                "impact": impact,
                "shortlink": f"{url}checks/{check.id}" if url else "",
                "started_at": since,
                "page_id": PAGE_ID,
                "incident_updates": [
                    {
                        "id": short_id(f"update:{incident_id}"),
                        "status": "investigating",
                        "body": f"{check.id} is {state.state.value} after {state.consecutive_failures} failed runs",
                        "incident_id": incident_id,
                        "created_at": since,
                        "updated_at": iso(state.updated_at or now),
                        "display_at": since,
                    }
                ],
                "components": [components[-1]],
            }
        )
    position = len(components)
    for group, members in sorted(groups.items()):
        position += 1
        statuses = [c["status"] for c in components if c["id"] in set(members)]
        components.append(
            {
                "id": short_id("group:" + group),
                "name": group,
                "status": max(statuses, key=_severity) if statuses else "operational",
                "created_at": iso(watcher.started),
                "updated_at": iso(updated),
                "position": position,
                "description": None,
                "showcase": False,
                "start_date": None,
                "group_id": None,
                "page_id": PAGE_ID,
                "group": True,
                "only_show_if_degraded": False,
                "components": members,
            }
        )
    maintenances = []
    for notice in notices(watcher.settings.maintenance, now):
        if notice.status == "recurring":
            continue
        maintenance_id = short_id(f"maintenance:{notice.title}:{notice.start}:{notice.end}")
        status = "in_progress" if notice.status == "in progress" else "scheduled"
        maintenances.append(
            {
                "id": maintenance_id,
                "name": notice.title,
                "status": status,
                "created_at": iso(watcher.started),
                "updated_at": iso(now),
                "monitoring_at": None,
                "resolved_at": None,
                "impact": "maintenance",
                "shortlink": "",
                "started_at": iso(notice.start) if notice.start else iso(now),
                "page_id": PAGE_ID,
                "incident_updates": [
                    {
                        "id": short_id(f"update:{maintenance_id}"),
                        "status": status,
                        "body": notice.text,
                        "incident_id": maintenance_id,
                        "created_at": iso(now),
                        "updated_at": iso(now),
                        "display_at": iso(now),
                    }
                ],
                "components": [],
                "scheduled_for": iso(notice.start),
                "scheduled_until": iso(notice.end),
            }
        )
    return {
        "page": {"id": PAGE_ID, "name": name, "url": url, "time_zone": "Etc/UTC", "updated_at": iso(updated)},
        "components": components,
        "incidents": incidents,
        "scheduled_maintenances": maintenances,
        "status": {"indicator": worst, "description": INDICATORS[worst]},
    }


def _severity(status: str) -> int:
    return ["operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage"].index(status)
