"""``fraiseql-check grafana push|diff`` against a recording stand-in for Grafana's HTTP API."""

from __future__ import annotations

import json

import pytest

from tests.support.checkdir import CheckDir
from tests.support.grafana_api import GrafanaAPI, grafana_api

CHECK = """
from fraiseql_checks import check, record

@check(runbook="docs/runbooks/Thing.md", panel={"value": "depth", "thresholds": [10]})
def check_queue_depth():
    record("depth", 3)
"""
SEED = 6


@pytest.fixture
def project(checkdir: CheckDir) -> CheckDir:
    checkdir.write("fraiseql-checks.yaml", "paths: [checks]\n")
    checkdir.write("checks/queue/check_queue.py", CHECK)
    return checkdir


def push(project: CheckDir, grafana: GrafanaAPI, *extra: str, token: str | None = None):  # type: ignore[no-untyped-def]
    return project.run("grafana", "push", "--url", grafana.url, *extra, env={"GRAFANA_TOKEN": token or grafana.token})


def test_push_creates_the_folder_upserts_every_dashboard_and_prints_their_urls(project: CheckDir) -> None:
    with grafana_api() as grafana:
        result = push(project, grafana, "--folder", "Observability", "--message", "release 1.2")
    assert result.ret == 0, result.stderr
    assert [(r.method, r.path) for r in grafana.requests[:2]] == [("GET", "/api/folders"), ("POST", "/api/folders")]
    folder_body = grafana.requests[1].body
    assert folder_body["title"] == "Observability" and folder_body["uid"].startswith("fqc-folder-observability-")
    saves = grafana.calls("POST", "/api/dashboards/db")
    assert len(saves) == SEED + 1
    for save in saves:
        assert save.headers["authorization"] == f"Bearer {grafana.token}"
        assert save.headers["content-type"].split(";")[0] == "application/json"
        assert set(save.body) == {"dashboard", "folderUid", "message", "overwrite"}
        assert save.body["folderUid"] == folder_body["uid"]
        assert save.body["message"] == "release 1.2"
        assert save.body["overwrite"] is True
        assert save.body["dashboard"]["id"] is None
    # every dashboard was looked up by uid first (404: new), then saved
    assert len(grafana.calls("GET", "/api/dashboards/uid/")) == SEED + 1
    titles = {save.body["dashboard"]["title"] for save in saves}
    assert "Checks: queue" in titles and "FraiseQL: Operations Overview" in titles
    for uid, stored in grafana.dashboards.items():
        title = stored["dashboard"]["title"]
        slug = "-".join("".join(c if c.isalnum() else " " for c in title.lower()).split())
        assert f"pushed    {title}: {grafana.url}/d/{uid}/{slug} (version 1)" in result.outlines
    assert result.outlines[-1] == f"{SEED + 1} dashboards in folder 'Observability': {SEED + 1} pushed, 0 unchanged"
    assert result.outlines[:2] == ["collected 1 check", ""]  # as a run says it
    assert result.outlines[2].startswith("created folder 'Observability' (uid fqc-folder-observability-")


def test_a_second_push_changes_nothing_and_force_pushes_anyway(project: CheckDir) -> None:
    with grafana_api() as grafana:
        assert push(project, grafana).ret == 0
        before = len(grafana.requests)
        again = push(project, grafana)
        assert again.ret == 0, again.stderr
        later = grafana.requests[before:]
        assert not [r for r in later if r.method == "POST"]  # the folder exists, nothing changed
        assert again.outlines[-1] == f"{SEED + 1} dashboards in folder 'FraiseQL': 0 pushed, {SEED + 1} unchanged"
        assert any(line.startswith("unchanged Checks: queue: http://") for line in again.outlines)
        forced = push(project, grafana, "--force")
        assert forced.ret == 0
        assert {stored["dashboard"]["version"] for stored in grafana.dashboards.values()} == {2}


def test_diff_shows_new_and_changed_dashboards(project: CheckDir) -> None:
    with grafana_api() as grafana:
        fresh = project.run(
            "grafana", "diff", "--url", grafana.url, "--exit-code", env={"GRAFANA_TOKEN": grafana.token}
        )
        assert fresh.ret == 1
        assert "folder 'FraiseQL' does not exist in Grafana: a push creates it" in fresh.outlines
        assert sum(line.startswith("new ") for line in fresh.outlines) == SEED + 1
        assert not grafana.calls("POST")  # diff never writes
        assert push(project, grafana).ret == 0
        project.write(
            "checks/queue/check_queue.py",
            CHECK.replace('"thresholds": [10]', '"thresholds": [20]'),
        )
        changed = project.run("grafana", "diff", "--url", grafana.url, env={"GRAFANA_TOKEN": grafana.token})
    assert changed.ret == 0  # informational without --exit-code
    assert any(line.startswith("changed   Checks: queue (http://") for line in changed.outlines)
    assert '-                "value": 10' in changed.outlines
    assert '+                "value": 20' in changed.outlines
    assert changed.outlines[-1] == f"{SEED + 1} dashboards: 1 changed, {SEED} unchanged"


def test_a_grafana_under_a_sub_path(project: CheckDir) -> None:
    with grafana_api(prefix="/grafana") as grafana:
        result = push(project, grafana)
    assert result.ret == 0, result.stderr
    assert all(r.path.startswith("/grafana/api/") for r in grafana.requests)
    assert any(f"{grafana.url}/d/" in line for line in result.outlines)


def test_a_refused_token_is_one_line_and_masked(project: CheckDir) -> None:
    with grafana_api() as grafana:
        result = push(project, grafana, token="glsa_wrong_secret_token")
    assert result.ret == 1
    assert result.stderr.splitlines() == [
        f"ERROR: Grafana at {grafana.url} refused the token (401 Unauthorized: Unauthorized): "
        "check --token or GRAFANA_TOKEN"
    ]
    assert "glsa_wrong_secret_token" not in result.stdout + result.stderr


def test_a_token_given_on_the_command_line_is_masked_too(project: CheckDir) -> None:
    with grafana_api(token="glsa_cli_secret") as grafana:
        grafana.forbidden.add(("POST", "/api/folders"))
        result = project.run("grafana", "push", "--url", grafana.url, "--token", "glsa_cli_secret")
    assert result.ret == 1
    assert result.stderr.splitlines() == [
        f"ERROR: Grafana at {grafana.url} refused creating folder 'FraiseQL' (POST /api/folders) (403 Forbidden: "
        "You'll need additional permissions to perform this action.): the token needs the Editor role or the "
        "dashboards:write and folders:create permissions"
    ]
    assert "glsa_cli_secret" not in result.stdout + result.stderr
    assert grafana.requests[0].headers["authorization"] == "Bearer glsa_cli_secret"


def test_forbidden_to_save_dashboards(project: CheckDir) -> None:
    with grafana_api() as grafana:
        grafana.add_folder("FraiseQL", "ops")
        grafana.forbidden.add(("POST", "/api/dashboards/db"))
        result = push(project, grafana)
    assert result.ret == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"ERROR: Grafana at {grafana.url} refused saving ")
    assert "(POST /api/dashboards/db) (403 Forbidden" in line


def test_a_missing_folder_without_creating_it(project: CheckDir) -> None:
    with grafana_api() as grafana:
        result = push(project, grafana, "--folder", "Ops", "--no-create-folder")
    assert result.ret == 1
    assert result.stderr.splitlines() == [
        f"ERROR: Grafana at {grafana.url} has no folder 'Ops' (leave out --no-create-folder to create it)"
    ]
    assert not grafana.calls("POST")


def test_an_existing_folder_is_found_by_title(project: CheckDir) -> None:
    with grafana_api() as grafana:
        grafana.add_folder("Ops", "ops-uid")
        result = push(project, grafana, "--folder", "Ops")
    assert result.ret == 0
    assert not grafana.calls("POST", "/api/folders")
    assert {stored["folderUid"] for stored in grafana.dashboards.values()} == {"ops-uid"}


def test_an_unreachable_grafana(project: CheckDir) -> None:
    from tests.support.services import free_port

    url = f"http://127.0.0.1:{free_port()}"
    result = project.run("grafana", "diff", "--url", url, env={"GRAFANA_TOKEN": "glsa_x"})
    assert result.ret == 1
    assert result.stderr.splitlines() == [f"ERROR: cannot reach Grafana at {url}: connection refused"]


def test_usage_errors(project: CheckDir) -> None:
    missing = project.run("grafana", "push")
    assert missing.ret == 4
    assert missing.stderr.splitlines() == [
        "ERROR: no Grafana to talk to: give --url, set GRAFANA_URL, or `grafana.url` in the config"
    ]
    wrong = project.run("grafana", "push", "--url", "grafana:3000")
    assert wrong.ret == 4
    assert "expected an http:// or https:// URL" in wrong.stderr


def test_settings_from_the_config_file(project: CheckDir) -> None:
    with grafana_api() as grafana:
        project.write(
            "fraiseql-checks.yaml",
            f"paths: [checks]\ngrafana:\n  url: {grafana.url}\n  token: {grafana.token}\n  folder: Team\n",
        )
        result = project.run("grafana", "push")
    assert result.ret == 0, result.stderr
    assert grafana.token not in result.stdout + result.stderr
    assert [f["title"] for f in grafana.folders.values()] == ["Team"]
    pushed = json.dumps([s["dashboard"] for s in grafana.dashboards.values()])
    assert "${datasource}" in pushed
