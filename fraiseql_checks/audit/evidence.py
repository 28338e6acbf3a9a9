"""The audit evidence: what each compliance check concluded, and the exact SQL behind it.

One document (``evidence_document``), written as JSON (the whole document, its
schema in ``docs/audit-evidence.schema.json``), CSV (one row per executed
statement) or HTML (one self-contained page: inline style, no script, no external
resource, every value escaped). An auditor can re-run each statement in psql with
its parameters, as the role and tenant it names, in a read-only transaction.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from fraiseql_checks._version import __version__
from fraiseql_checks.checks import Check
from fraiseql_checks.core.session import _masked
from fraiseql_checks.result import Result

if TYPE_CHECKING:
    import datetime as dt

FORMATS = {".json": "json", ".csv": "csv", ".html": "html", ".htm": "html"}
CSV_COLUMNS = (
    "check_id",
    "check",
    "severity",
    "outcome",
    "message",
    "started_at",
    "duration_s",
    "values",
    "query",
    "ran_at",
    "duration_ms",
    "rows",
    "role",
    "tenant",
    "sql",
    "params",
    "result",
    "error",
)


def _iso(timestamp: float) -> str | None:
    import datetime as dt  # imported when a report is written, not at every start

    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat() if timestamp else None


def check_entry(result: Result, check: Check | None) -> dict[str, Any]:
    """One check's evidence: its metadata, outcome, recorded values and statements."""
    audit = result.extra.get("audit", {})
    return {
        "id": result.id,
        "name": result.name,
        "kind": result.kind,
        "description": check.description if check is not None else "",
        "severity": result.severity,
        "runbook": check.runbook if check is not None else None,
        "outcome": result.outcome.value,
        "message": result.message,
        "started_at": _iso(result.started_at),
        "duration_s": round(result.duration_s, 6),
        "trace_id": result.trace_id,
        "values": dict(result.values),
        "facts": dict(audit.get("facts", {})),
        "queries": list(audit.get("queries", [])),
    }


def evidence_document(
    results: Iterable[tuple[Result, Check | None]],
    *,
    generated_at: dt.datetime,
    since: str,
    seconds: float,
    profile: str,
    database: str | None,
    scope: dict[str, Any],
    mask: Callable[[str], str],
) -> dict[str, Any]:
    """The whole evidence of one ``audit report`` run, secrets masked."""
    import datetime as dt  # imported when a report is written, not at every start

    checks = [check_entry(result, check) for result, check in results]
    summary = {"total": len(checks), "passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for entry in checks:
        summary[entry["outcome"]] += 1
    document = {
        "empty": is_empty(summary),
        "title": "FraiseQL audit evidence",
        "generated_at": generated_at.isoformat(),
        "tool": {"name": "fraiseql-checks", "version": __version__},
        "profile": profile,
        "database": database,
        "scope": scope,
        "period": {
            "since": since,
            "seconds": seconds,
            "from": (generated_at - dt.timedelta(seconds=seconds)).isoformat(),
            "to": generated_at.isoformat(),
        },
        "summary": summary,
        "checks": checks,
    }
    masked: dict[str, Any] = _masked(document, mask)
    return masked


def is_empty(summary: dict[str, int]) -> bool:
    """Whether no check ran: none collected, or every one skipped. Such a report proves nothing."""
    return summary["passed"] + summary["failed"] + summary["error"] == 0


def to_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def to_csv(document: dict[str, Any]) -> str:
    """One row per executed statement (a check that ran none gets one row without them)."""
    import csv

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in document["checks"]:
        base = [
            entry["id"],
            entry["name"],
            entry["severity"],
            entry["outcome"],
            entry["message"],
            entry["started_at"] or "",
            entry["duration_s"],
            json.dumps(entry["values"], sort_keys=True),
        ]
        queries = entry["queries"] or [None]
        for query in queries:
            if query is None:
                writer.writerow([*base, *[""] * (len(CSV_COLUMNS) - len(base))])
                continue
            writer.writerow(
                [
                    *base,
                    query["what"],
                    query["ran_at"],
                    query["duration_ms"],
                    query["rows"],
                    query["role"] or "",
                    query["tenant"] or "",
                    query["sql"],
                    json.dumps(query["params"], ensure_ascii=False),
                    json.dumps(query.get("result"), ensure_ascii=False) if "result" in query else "",
                    query.get("error", ""),
                ]
            )
    return out.getvalue()


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1b1f24; max-width: 72rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0; } td, th { border: 1px solid #d0d7de; padding: .25rem .5rem;
text-align: left; vertical-align: top; } th { background: #f6f8fa; }
pre { background: #f6f8fa; padding: .5rem; white-space: pre-wrap; word-break: break-word; margin: .25rem 0; }
.outcome { font-weight: bold; padding: 0 .4rem; border-radius: .2rem; }
.passed { background: #dafbe1; } .failed, .error { background: #ffebe9; } .skipped { background: #fff8c5; }
section.check { border-top: 2px solid #d0d7de; } details { margin: .5rem 0; }
.empty { border: 2px solid #cf222e; background: #ffebe9; padding: .5rem 1rem; }
"""
_EMPTY = (
    '<p class="empty"><strong>EMPTY: no check ran.</strong> Every check was skipped or none was collected;'
    " this report is not evidence of anything (written with --allow-empty).</p>"
)


def _e(value: Any) -> str:
    import html

    return html.escape("" if value is None else str(value), quote=True)


def _table(rows: Iterable[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _query_html(number: int, query: dict[str, Any]) -> str:
    facts = [
        ("ran at", query["ran_at"]),
        ("duration", f"{query['duration_ms']} ms"),
        ("rows", query["rows"]),
        ("role", query["role"] or "(login role)"),
        ("tenant", f"{query['tenant_setting']} = {query['tenant']}" if query["tenant"] is not None else "(none)"),
        ("transaction", "READ ONLY" if query["read_only"] else "read-write"),
    ]
    result = (
        f"<p>Result</p><pre>{_e(json.dumps(query['result'], ensure_ascii=False, indent=1))}</pre>"
        if "result" in query
        else ""
    )
    if "error" in query:
        facts.append(("error", query["error"]))
    return (
        f"<details open><summary>Statement {number}: {_e(query['what'])}</summary>{_table(facts)}"
        f"<p>SQL</p><pre>{_e(query['sql'])}</pre>"
        f"<p>Parameters ($1, $2, ...)</p><pre>{_e(json.dumps(query['params'], ensure_ascii=False))}</pre>"
        f"{result}</details>"
    )


def to_html(document: dict[str, Any]) -> str:
    """A single self-contained page: nothing is loaded from elsewhere, every value is escaped."""
    period = document["period"]
    scope = document["scope"]
    summary = document["summary"]
    head = _table(
        [
            ("generated at", document["generated_at"]),
            ("period", f"{period['from']} to {period['to']} (--since {period['since']})"),
            ("profile", document["profile"]),
            ("database", document["database"] or "(not configured)"),
            ("role", scope.get("role") or "(login role)"),
            ("tenant", scope.get("tenant") or "(all the role may see)"),
            ("tool", f"{document['tool']['name']} {document['tool']['version']}"),
        ]
    )
    counts = ", ".join(f"{summary[k]} {k}" for k in ("passed", "failed", "error", "skipped") if summary[k])
    sections = []
    for entry in document["checks"]:
        outcome = entry["outcome"]
        meta = [
            ("check", entry["id"]),
            ("severity", entry["severity"]),
            ("runbook", entry["runbook"] or ""),
            ("started at", entry["started_at"] or ""),
            ("duration", f"{entry['duration_s']:.3f} s"),
            ("trace id", entry["trace_id"]),
        ]
        values = (
            _table(sorted({**entry["facts"], **entry["values"]}.items())) if entry["values"] or entry["facts"] else ""
        )
        message = f"<pre>{_e(entry['message'])}</pre>" if entry["message"] else ""
        queries = "".join(_query_html(i + 1, q) for i, q in enumerate(entry["queries"]))
        sections.append(
            f'<section class="check"><h2>{_e(entry["name"])} '
            f'<span class="outcome {_e(outcome)}">{_e(outcome.upper())}</span></h2>'
            f"<p>{_e(entry['description'])}</p>{_table(meta)}{message}{values}{queries}</section>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(document['title'])}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_e(document['title'])}</h1>{head}{_EMPTY if document['empty'] else ''}"
        f"<p><strong>{_e(counts or 'no checks ran')}</strong> "
        f"of {summary['total']} checks.</p>{''.join(sections)}</body></html>\n"
    )


WRITERS: dict[str, Callable[[dict[str, Any]], str]] = {"json": to_json, "csv": to_csv, "html": to_html}
