"""``fraiseql-check audit report``: the evidence, through its third-party readers, and reproducible."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import html5lib
import jsonschema
import pytest

from fraiseql_checks.audit.evidence import CSV_COLUMNS
from fraiseql_checks.audit.reader import jsonable
from tests.audit.audit_db import AuditDatabase, insert_v2, run, v2_event
from tests.audit.test_audit_checks import project

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "audit-evidence.schema.json").read_text())
HOSTILE_USER = '<script>alert("x")</script>'
PASSWORD = "s3cret-Passw0rd"


def ago(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)


@pytest.fixture
def incident(v2: AuditDatabase, checkdir: Any) -> tuple[AuditDatabase, Any]:
    """A burst of failed logins by a user whose id is an HTML payload, and a check that is not an audit check."""
    rows = [
        v2_event(ago(40 + i), user_id=HOSTILE_USER, resource_type="user", action="login", status="failure")
        for i in range(11)
    ]
    rows += [v2_event(ago(3000), resource_type="admin_config", action="update", user_id="admin_1")]
    run(v2.with_conn(lambda conn: insert_v2(conn, rows)))
    project(checkdir)
    checkdir.write("checks/check_other.py", "def check_unrelated():\n    assert True\n")
    return v2, checkdir


def report(incident: tuple[AuditDatabase, Any], name: str, *args: str) -> tuple[Any, Path]:
    db, checkdir = incident
    dsn = db.dsn.replace("postgres@", f"postgres:{PASSWORD}@")  # trust auth ignores it; it must not leak
    result = checkdir.run(
        "audit", "report", "--since", "2h", "-o", name, *args, env={"DATABASE_URL": dsn, "FRAISEQL_PROFILE": db.profile}
    )
    return result, checkdir.path / name


def test_json_evidence_follows_its_schema(incident: tuple[AuditDatabase, Any]) -> None:
    result, path = report(incident, "evidence.json")
    assert result.ret == 1, result.stdout + result.stderr
    result.fnmatch_lines(["collected 7 checks", f"wrote JSON audit evidence of 7 checks to {path}"])
    document = json.loads(path.read_text())
    jsonschema.validate(document, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert PASSWORD not in path.read_text()
    assert document["database"].startswith("postgresql://postgres:***@127.0.0.1:5432/")
    assert document["period"]["since"] == "2h" and document["period"]["seconds"] == 7200
    assert document["summary"] == {"total": 7, "passed": 4, "failed": 1, "error": 0, "skipped": 2}
    checks = {c["name"]: c for c in document["checks"]}
    assert "check_unrelated" not in checks
    failed = checks["check_failed_logins"]
    assert failed["outcome"] == "failed" and failed["values"] == {"failed_logins": 11}
    assert failed["runbook"] == "docs/runbooks/HighFailedAuthAttempts.md" and failed["severity"] == "critical"
    assert failed["facts"] == {"window_seconds": 7200}
    assert [q["what"] for q in failed["queries"]] == ["peak", "group_by", "group_by"]
    admin = checks["check_admin_actions_attributed"]
    assert admin["values"] == {"admin_actions": 1, "unattributed_admin_actions": 0}
    assert admin["queries"][0]["result"] == {"count": 1}


def _literal(conn: Any, value: Any) -> Any:
    if isinstance(value, list):
        return conn.fetchval("SELECT quote_literal($1::text[]::text)", [str(v) for v in value])
    return conn.fetchval("SELECT quote_literal($1::text)", None if value is None else str(value))


def test_every_statement_reruns_in_psql_with_the_same_answer(incident: tuple[AuditDatabase, Any]) -> None:
    """What an auditor does: PREPARE the recorded SQL, EXECUTE it with the recorded parameters as text."""
    db, _ = incident
    _, path = report(incident, "evidence.json")
    document = json.loads(path.read_text())
    # Everything but the audit lag, which is measured against the clock and so differs on every run.
    statements = [q for c in document["checks"] for q in c["queries"] if "result" in q and q["what"] != "audit lag"]
    assert len(statements) >= 4

    async def rerun(conn: Any) -> None:
        for number, query in enumerate(statements):
            literals = [await _literal(conn, p) for p in query["params"]]
            await conn.execute(f"PREPARE evidence_{number} AS {query['sql']}")
            execute = f"EXECUTE evidence_{number}({', '.join(literals)})" if literals else f"EXECUTE evidence_{number}"
            rows = [dict(r) for r in await conn.fetch(execute)]
            again = jsonable(rows)
            recorded = query["result"]
            assert (again[0] if isinstance(recorded, dict) else again) == recorded, query["sql"]

    run(db.with_conn(rerun))


def test_html_evidence_is_valid_self_contained_and_escaped(incident: tuple[AuditDatabase, Any]) -> None:
    result, path = report(incident, "evidence.html")
    assert result.ret == 1
    text = path.read_text()
    html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(text)  # raises on any parse error
    assert "<script" not in text.replace("&lt;script", "")
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert not re.search(r"\b(src|href)\s*=|@import|url\(", text)
    assert PASSWORD not in text
    tree = html5lib.parse(text, namespaceHTMLElements=False)
    titles = [h.text for h in tree.iter("h2")]
    assert len(titles) == 7 and "check_failed_logins " in titles
    assert "$1" in "".join(pre.text or "" for pre in tree.iter("pre"))


def test_csv_evidence_has_a_row_per_statement(incident: tuple[AuditDatabase, Any]) -> None:
    result, path = report(incident, "evidence.csv")
    assert result.ret == 1
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, strict=True))
    assert tuple(rows[0]) == CSV_COLUMNS
    body = [dict(zip(CSV_COLUMNS, row, strict=True)) for row in rows[1:]]
    failed = [r for r in body if r["check"] == "check_failed_logins"]
    assert [r["query"] for r in failed] == ["peak", "group_by", "group_by"]
    assert all("$1" in r["sql"] and json.loads(r["params"]) for r in failed)
    assert HOSTILE_USER in failed[0]["message"]
    skipped = [r for r in body if r["outcome"] == "skipped"]
    assert sorted(r["check"] for r in skipped) == ["check_audit_chain_intact", "check_audit_writers"]
    assert all(r["sql"] == "" for r in skipped)
    assert PASSWORD not in path.read_text()


def test_statements_that_fail_are_evidence_too(incident: tuple[AuditDatabase, Any]) -> None:
    """Logged in without the audit role, every statement is refused: the checks fail, the evidence says why.

    The real ``db`` fixture raises a refused statement as a ``TargetError``, and a target's fault while a
    check runs fails the check (the stand-in pool of the earlier tests raised asyncpg's error: an error).
    """
    db, checkdir = incident
    result = checkdir.run(
        "audit",
        "report",
        "--since",
        "1h",
        "-o",
        "refused.json",
        env={"DATABASE_URL": db.reader_dsn, "FRAISEQL_PROFILE": db.profile},
    )
    assert result.ret == 1
    document = json.loads((checkdir.path / "refused.json").read_text())
    jsonschema.validate(document, SCHEMA)
    assert document["summary"]["failed"] == 5
    failed = {c["name"]: c for c in document["checks"]}["check_failed_logins"]
    assert failed["outcome"] == "failed"
    assert "permission denied for table audit_log" in failed["message"]
    (query,) = failed["queries"]
    assert query["error"] == "InsufficientPrivilegeError: permission denied for table audit_log"
    assert query["rows"] == 0 and "result" not in query


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "2h", "-o", "e.pdf"), "ERROR: -o e.pdf: the file must end in .html, .json or .csv"),
        (
            ("--since", "soon", "-o", "e.json"),
            "ERROR: --since: expected a duration like '30s', '1m' or '1h30m', got 'soon'",
        ),
        (("--since", "2h", "-o", "missing/e.json"), "ERROR: -o missing/e.json: folder * does not exist"),
        (
            ("--since", "2h"),
            "ERROR: audit report: -o FILE is required: where to write the evidence (.html, .json or .csv)",
        ),
        (("-o", "e.json", "--watch"), "ERROR: --watch does not apply to `fraiseql-check audit` (see *)"),
        (("-o", "e.json", "--store", "x.db"), "ERROR: --store does not apply to `fraiseql-check audit` (see *)"),
        (("-o", "e.json", "--listen", ":1"), "ERROR: --listen does not apply to `fraiseql-check audit` (see *)"),
        (("-o", "e.json", "--collect-only"), "ERROR: --collect-only does not apply to `fraiseql-check audit` (see *)"),
    ],
)
def test_bad_command_lines_are_one_line_and_exit_4(checkdir: Any, args: tuple[str, ...], message: str) -> None:
    result = checkdir.run("audit", "report", *args)
    assert result.ret == 4
    result.stderr_lines([message])
    assert len(result.stderr.strip().splitlines()) == 1


def test_no_evidence_is_written_when_every_check_is_skipped(checkdir: Any) -> None:
    """No database: the seven audit checks skip. An archived report of seven skips would read as a pass."""
    project(checkdir)
    result = checkdir.run("audit", "report", "-o", "evidence.json")
    assert result.ret == 1
    assert result.stderr.splitlines() == [
        "ERROR: no audit evidence written: all 7 audit checks skipped (the database is not configured: set"
        " DATABASE_URL or `database.dsn` in the config); --allow-empty writes it anyway"
    ]
    assert not (checkdir.path / "evidence.json").exists()
    assert "wrote" not in result.stdout


def test_no_evidence_is_written_when_no_audit_check_is_collected(checkdir: Any) -> None:
    checkdir.write("checks/check_other.py", "def check_unrelated():\n    assert True\n")
    result = checkdir.run("audit", "report", "-o", "evidence.json")
    assert result.ret == 5  # the run's own code: nothing collected
    assert result.stderr.splitlines() == [
        "ERROR: no audit evidence written: no audit check was collected (an audit check asks for the `audit`"
        " fixture); --allow-empty writes it anyway"
    ]
    assert not (checkdir.path / "evidence.json").exists()


def test_allow_empty_writes_the_evidence_marked_as_empty(checkdir: Any) -> None:
    project(checkdir)
    result = checkdir.run("audit", "report", "--allow-empty", "-o", "evidence.json")
    assert result.ret == 0, result.stderr
    result.fnmatch_lines(["wrote JSON audit evidence of 7 checks (EMPTY: no check ran) to *evidence.json"])
    document = json.loads((checkdir.path / "evidence.json").read_text())
    jsonschema.validate(document, SCHEMA)
    assert document["empty"] is True
    assert document["summary"] == {"total": 7, "passed": 0, "failed": 0, "error": 0, "skipped": 7}
    assert checkdir.run("audit", "report", "--allow-empty", "-o", "evidence.html").ret == 0
    page = (checkdir.path / "evidence.html").read_text()
    html5lib.HTMLParser(strict=True).parse(page)
    assert "EMPTY: no check ran." in page


def test_evidence_of_checks_that_ran_is_not_marked_empty(incident: tuple[AuditDatabase, Any]) -> None:
    result, path = report(incident, "ran.json")
    assert result.ret == 1  # the burst of failed logins
    document = json.loads(path.read_text())
    assert document["empty"] is False
    assert "EMPTY" not in result.stdout
