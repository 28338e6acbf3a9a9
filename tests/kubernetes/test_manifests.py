"""``generate kubernetes``: the committed base, rendered by kustomize and checked by the real consumers
(``kubernetes-validate --strict``, ``@kubernetes-models/prometheus-operator``, ``promtool``), and
what the settings, flags and config change."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fraiseql_checks.kubernetes import manifests
from fraiseql_checks.watch.plugin import DEFAULT_LISTEN, DEFAULT_STORE
from tests.alerting.test_alert_rules import GENERATOR_ENV
from tests.support import REPO
from tests.support.checkdir import CheckDir
from tests.support.services import require, require_binary
from tests.support.validators import kubernetes_tools, prometheus_operator_validator

DEPLOY = REPO / "deploy" / "kubernetes"
BLANK = {name: "" for name in GENERATOR_ENV}


def kubectl() -> str:
    """kubectl with a kustomize that knows ``patches`` (v4 or newer): the one validators.py
    fetched, else the machine's."""
    cached = kubernetes_tools() / "kubectl"
    return str(cached) if cached.exists() else require_binary("kubectl")


class GoYAML(yaml.SafeLoader):
    """Reads what kustomize writes: a bare ``=`` (``matchType: =``) is a string to Go's YAML,
    not YAML 1.1's "value" key (PyYAML's reading)."""


GoYAML.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def kustomize(folder: Path) -> list[dict[str, Any]]:
    done = subprocess.run([kubectl(), "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.load_all(done.stdout, Loader=GoYAML) if doc]


def kubernetes_validate(path: Path) -> subprocess.CompletedProcess[str]:
    binary = require_binary("kubernetes-validate", Path(sys.executable).parent)
    return subprocess.run([binary, "--strict", str(path)], capture_output=True, text=True, timeout=120)


def operator_validate(path: Path) -> subprocess.CompletedProcess[str]:
    node = require_binary("node")
    script = prometheus_operator_validator()
    require(
        script.exists(),
        "the @kubernetes-models/prometheus-operator validator is not fetched (tests/support/validators.py)",
    )
    return subprocess.run([node, str(script), str(path)], capture_output=True, text=True, timeout=120)


def promtool_check(groups: dict[str, Any], tmp_path: Path, name: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / f"{name}.rules.yml"
    path.write_text(yaml.safe_dump(groups, sort_keys=False))
    return subprocess.run(
        [require_binary("promtool"), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )


def write_all(documents: list[dict[str, Any]], path: Path) -> Path:
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return path


def by_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return kustomize(DEPLOY)


@pytest.fixture(scope="module")
def ha() -> list[dict[str, Any]]:
    return kustomize(DEPLOY / "overlays" / "ha")


def the(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = by_kind(documents, kind)
    return found


# ---- the committed base ------------------------------------------------------------------


def test_the_committed_base_and_chart_are_what_the_generators_make(checkdir: CheckDir) -> None:
    done = subprocess.run(
        checkdir.command("generate", "kubernetes", "helm", "--check"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=checkdir.env(**BLANK),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "differs" not in done.stdout and "delete the file" not in done.stdout


def test_kustomize_renders_the_base_and_the_ha_overlay(base: list[dict[str, Any]], ha: list[dict[str, Any]]) -> None:
    kinds = sorted({d["kind"] for d in base})
    assert kinds == [
        "AlertmanagerConfig",
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "PrometheusRule",
        "Service",
        "ServiceMonitor",
    ]
    assert {d["metadata"]["namespace"] for d in base} == {"monitoring"}
    assert len(ha) == len(base)
    deployment = the(ha, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    store = [e for e in container["env"] if e["name"] == "FRAISEQL_CHECKS_STORE"]
    assert store == [
        {
            "name": "FRAISEQL_CHECKS_STORE",
            "valueFrom": {"secretKeyRef": {"name": "fraiseql-check", "key": "FRAISEQL_CHECKS_STORE"}},
        }
    ]
    assert len(container["env"]) == len(the(base, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]) + 1


def test_every_core_object_passes_kubernetes_validate_strict(
    base: list[dict[str, Any]], ha: list[dict[str, Any]], tmp_path: Path
) -> None:
    core = [d for d in base + by_kind(ha, "Deployment") if not d["apiVersion"].startswith("monitoring.coreos.com/")]
    done = kubernetes_validate(write_all(core, tmp_path / "core.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr
    passed = [line for line in done.stdout.splitlines() if " passed for resource " in line]
    assert len(passed) == len(core), done.stdout + done.stderr


def test_kubernetes_validate_fails_on_a_deployment_with_a_bad_field(base: list[dict[str, Any]], tmp_path: Path) -> None:
    broken = json.loads(json.dumps(the(base, "Deployment")))
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/healthz"
    done = kubernetes_validate(write_all([broken], tmp_path / "broken.yaml"))
    assert done.returncode != 0
    assert "paht" in done.stdout + done.stderr


def test_every_operator_object_passes_the_prometheus_operator_models(
    base: list[dict[str, Any]], tmp_path: Path
) -> None:
    crds = [d for d in base if d["apiVersion"].startswith("monitoring.coreos.com/")]
    done = operator_validate(write_all(crds, tmp_path / "crds.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(done.stdout.split()) == sorted(
        word for d in crds for word in ("ok", f"{d['kind']}/{d['metadata']['name']}")
    )


def test_the_prometheus_operator_models_fail_on_broken_objects(base: list[dict[str, Any]], tmp_path: Path) -> None:
    monitor = json.loads(json.dumps(the(base, "ServiceMonitor")))
    monitor["spec"]["endpoints"] = "http"
    routing = json.loads(json.dumps(the(base, "AlertmanagerConfig")))
    routing["spec"]["route"]["groupWait"] = "soon"
    done = operator_validate(write_all([monitor, routing], tmp_path / "broken.yaml"))
    assert done.returncode == 1
    assert "FAIL ServiceMonitor/fraiseql-check" in done.stdout
    assert "FAIL AlertmanagerConfig/fraiseql-check" in done.stdout and "groupWait" in done.stdout


def test_every_prometheus_rule_passes_promtool_and_bad_promql_fails(base: list[dict[str, Any]], tmp_path: Path) -> None:
    rules = by_kind(base, "PrometheusRule")
    assert len(rules) >= 8
    for rule in rules:
        done = promtool_check(rule["spec"], tmp_path, rule["metadata"]["name"])
        assert done.returncode == 0, rule["metadata"]["name"] + done.stdout + done.stderr
    broken = json.loads(json.dumps(rules[0]["spec"]))
    broken["groups"][0]["rules"][0]["expr"] = "sum(rate(x[5m])"
    done = promtool_check(broken, tmp_path, "broken")
    assert done.returncode == 1
    assert "parse error" in done.stdout + done.stderr


# ---- what the objects carry: the other generators' files, the watcher's facts ----------------


def test_prometheus_rules_and_dashboards_carry_the_generated_files_unchanged(base: list[dict[str, Any]]) -> None:
    sources = set()
    for rule in by_kind(base, "PrometheusRule"):
        source = rule["metadata"]["annotations"][manifests.SOURCE]
        assert rule["spec"] == yaml.safe_load((REPO / source).read_text()), source
        sources.add(source)
    assert sources == {
        *(p.relative_to(REPO).as_posix() for p in (REPO / "alerts").glob("*.rules.yml")),
        *(p.relative_to(REPO).as_posix() for p in (REPO / "alerts" / "slo").glob("*.rules.yml")),
    }
    dashboards = by_kind(base, "ConfigMap")
    assert len(dashboards) == len(list((REPO / "dashboards").glob("*.json")))
    for config_map in dashboards:
        source = config_map["metadata"]["annotations"][manifests.SOURCE]
        assert config_map["data"] == {Path(source).name: (REPO / source).read_text()}
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["annotations"]["grafana_folder"] == "FraiseQL"
        assert manifests.apply_size(config_map) < manifests.APPLY_LIMIT


def test_the_alertmanager_config_routes_as_generate_alertmanager_does_with_secrets_by_reference(
    base: list[dict[str, Any]],
) -> None:
    routing = the(base, "AlertmanagerConfig")["spec"]
    source = yaml.safe_load((REPO / "alerts" / "alertmanager.yml").read_text())
    assert routing["route"]["receiver"] == source["route"]["receiver"]
    assert routing["route"]["groupBy"] == source["route"]["group_by"]
    assert [(r["receiver"], r["matchers"]) for r in routing["route"]["routes"]] == [
        (r["receiver"], [{"name": "severity", "matchType": "=", "value": m.split('"')[1]} for m in r["matchers"]])
        for r in source["route"]["routes"]
    ]
    assert len(routing["inhibitRules"]) == len(source["inhibit_rules"])
    receivers = {r["name"]: r for r in routing["receivers"]}
    secret = "fraiseql-check-alertmanager"
    assert receivers["pagerduty"]["pagerdutyConfigs"][0]["routingKey"] == {
        "name": secret,
        "key": "pagerduty_routing_key",
    }
    assert receivers["slack"]["slackConfigs"][0]["apiURL"] == {"name": secret, "key": "slack_webhook_url"}
    assert receivers["email"]["emailConfigs"][0]["to"] == "fraiseql-oncall@example.com"


def test_the_deployment_takes_the_watchers_facts(base: list[dict[str, Any]]) -> None:
    deployment = the(base, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    port = int(DEFAULT_LISTEN.rsplit(":", 1)[1])
    assert container["args"][:2] == ["--listen", f"0.0.0.0:{port}"]
    assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert the(base, "ServiceMonitor")["spec"]["endpoints"][0]["path"] == "/metrics"
    assert the(base, "Service")["spec"]["ports"][0]["port"] == port
    # a read-only root; the SQLite store's folder writable, under the image's root directory
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts[f"{manifests.WORKDIR}/{Path(DEFAULT_STORE).parent}"] == "state"
    assert {v["name"] for v in pod["volumes"]} == set(mounts.values())
    # longer than the longest check timeout (shipped checks: 120s) and the store's flush
    assert pod["terminationGracePeriodSeconds"] > 120
    # no secret value anywhere: the only plain value is the profile
    values = [e for e in container["env"] if "value" in e]
    assert values == [{"name": "FRAISEQL_PROFILE", "value": "fraiseql-v2"}]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert {"DATABASE_URL", "REDIS_URL", "FRAISEQL_URL", "FRAISEQL_CHECKS_API_TOKEN"} <= set(refs)
    assert all(ref["name"] == "fraiseql-check" and ref["key"] == name for name, ref in refs.items())


def test_the_service_monitor_gives_prometheus_the_job_the_alert_rules_expect(base: list[dict[str, Any]]) -> None:
    monitor, service = the(base, "ServiceMonitor"), the(base, "Service")
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "fraiseql-check"
    rules = yaml.safe_load((REPO / "alerts" / "fraiseql-checks.rules.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert any('up{job="fraiseql-check"}' in expr for expr in exprs)
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()


# ---- settings, flags, the config's secrets, errors -------------------------------------------

CHECKS = """
from fraiseql_checks import alert, check

@check(interval="30s", timeout="45s")
def check_slow():
    pass

@alert(expr="up == 0", for_="1m", severity="critical")
def check_target_down():
    '''A target is down.'''
"""


def generate(checkdir: CheckDir, *args: str, env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    result = checkdir.run("generate", "kubernetes", *args, env={**BLANK, **(env or {})})
    assert result.ret == 0, result.stdout + result.stderr
    folder = checkdir.path / "deploy" / "kubernetes" / "base"
    return {p.name: yaml.safe_load(p.read_text()) for p in folder.glob("*.yaml")}


def test_names_namespace_image_and_labels_from_the_config_and_flags(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_x.py", CHECKS)
    checkdir.write(
        "fraiseql-checks.yaml",
        """
        paths: [checks]
        kubernetes:
          name: checks
          namespace: prod
          image: registry.example.com/fraiseql-checks:1.2
          labels: {release: kube-prometheus-stack}
        """,
    )
    objects = generate(checkdir, "--namespace", "observability", "--label", "team=db")
    assert objects["kustomization.yaml"]["namespace"] == "observability"
    for name, document in objects.items():
        if name == "kustomization.yaml":
            continue
        meta = document["metadata"]
        assert meta["namespace"] == "observability", name
        assert meta["labels"]["release"] == "kube-prometheus-stack", name
        assert meta["labels"]["team"] == "db", name
        assert meta["name"].startswith("checks"), name
    pod = objects["deployment.yaml"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "registry.example.com/fraiseql-checks:1.2"
    assert pod["terminationGracePeriodSeconds"] == 45 + 10 + 10  # the longest timeout, the store's flush, 10 s
    rules = {n for n in objects if n.startswith("prometheusrule-")}
    assert rules == {"prometheusrule-x.yaml", "prometheusrule-fraiseql-checks.yaml"}


def test_config_secrets_become_secret_references_never_values(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_x.py", CHECKS)
    checkdir.write(
        "fraiseql-checks.yaml",
        """
        paths: [checks]
        database: {dsn: "${APP_DSN}"}
        notify:
          receivers:
            - {name: chat, type: slack, url: "${SLACK_HOOK:-https://hooks.example.com/none}"}
        kubernetes: {secret: watcher-env, env: [EXTRA_TOKEN]}
        """,
    )
    secret_values = {
        "APP_DSN": "postgresql://monitor:s3cr3t-pw@db/app",
        "SLACK_HOOK": "https://hooks.example.com/T0/s3cr3t-hook",
    }
    objects = generate(checkdir, env=secret_values)
    container = objects["deployment.yaml"]["spec"]["template"]["spec"]["containers"][0]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert refs["APP_DSN"] == {"name": "watcher-env", "key": "APP_DSN"}  # required: the config names it bare
    assert refs["SLACK_HOOK"] == {"name": "watcher-env", "key": "SLACK_HOOK", "optional": True}
    assert refs["EXTRA_TOKEN"] == {"name": "watcher-env", "key": "EXTRA_TOKEN"}
    assert refs["DATABASE_URL"]["optional"] is True
    written = "".join(p.read_text() for p in (checkdir.path / "deploy").rglob("*.yaml"))
    assert "s3cr3t" not in written


def test_a_private_api_makes_prometheus_scrape_with_the_read_token(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_x.py", CHECKS)
    checkdir.write("fraiseql-checks.yaml", "paths: [checks]\napi: {private: true}\n")
    objects = generate(checkdir)
    endpoint = objects["servicemonitor.yaml"]["spec"]["endpoints"][0]
    token = {"name": "fraiseql-check", "key": "FRAISEQL_CHECKS_API_READ_TOKEN"}
    assert endpoint["authorization"] == {"type": "Bearer", "credentials": token}
    container = objects["deployment.yaml"]["spec"]["template"]["spec"]["containers"][0]
    assert {"name": token["key"], "valueFrom": {"secretKeyRef": token}} in container["env"]


def test_every_receiver_field_translates_and_the_secrets_stay_out(checkdir: CheckDir, tmp_path: Path) -> None:
    checkdir.write("checks/check_x.py", CHECKS)
    checkdir.write(
        "fraiseql-checks.yaml",
        """
        paths: [checks]
        alertmanager:
          pagerduty_url: https://events.eu.pagerduty.com/v2/enqueue
          slack_channel: "#ops"
          email_to: oncall@example.org
          email_from: am@example.org
          smtp_smarthost: mail.example.org:587
          smtp_auth_username: am
          smtp_require_tls: true
        """,
    )
    env = {
        "PAGERDUTY_ROUTING_KEY": "R0UT1NGK3Y-s3cr3t",
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/s3cr3t",
        "SMTP_PASSWORD": "s3cr3t-pw",
    }
    objects = generate(checkdir, env=env)
    routing = objects["alertmanagerconfig.yaml"]
    receivers = {r["name"]: r for r in routing["spec"]["receivers"]}
    (email,) = receivers["email"]["emailConfigs"]
    assert email["authPassword"] == {"name": "fraiseql-check-alertmanager", "key": "smtp_auth_password"}
    assert (email["requireTLS"], email["authUsername"]) == (True, "am")
    (pagerduty,) = receivers["pagerduty"]["pagerdutyConfigs"]
    assert pagerduty["url"] == "https://events.eu.pagerduty.com/v2/enqueue"
    assert pagerduty["pagerDutyLinkConfigs"][0]["href"].startswith("{{")
    assert [d["key"] for d in pagerduty["details"]] == ["description"]
    assert "s3cr3t" not in (checkdir.path / "deploy" / "kubernetes" / "base" / "alertmanagerconfig.yaml").read_text()
    done = operator_validate(write_all([routing], tmp_path / "routing.yaml"))
    assert done.returncode == 0, done.stdout


def test_the_target_profile_chooses_the_rule_files_and_dashboards(checkdir: CheckDir, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run(
        checkdir.command("generate", "kubernetes", "-o", str(out)),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=checkdir.env(**BLANK, FRAISEQL_PROFILE="fraiseql-v1"),
    )
    assert done.returncode == 0, done.stderr
    base = out / "deploy" / "kubernetes" / "base"
    sources = {
        yaml.safe_load(p.read_text())["metadata"]["annotations"][manifests.SOURCE]
        for p in base.glob("*.yaml")
        if p.name.startswith(("prometheusrule-", "dashboard-"))
    }
    assert "alerts/fraiseql-v1/performance.rules.yml" in sources
    assert "alerts/fraiseql-v1/slo/fraiseql.rules.yml" in sources
    assert "alerts/slo/health.rules.yml" in sources  # no fraiseql-v1 copy: the same for every profile
    assert "dashboards/fraiseql-v1/operations-overview.json" in sources
    assert "dashboards/checks-health.json" in sources
    assert not any(s.startswith(("alerts/performance", "dashboards/operations-overview")) for s in sources)
    (container,) = yaml.safe_load((base / "deployment.yaml").read_text())["spec"]["template"]["spec"]["containers"]
    assert {"name": "FRAISEQL_PROFILE", "value": "fraiseql-v1"} in container["env"]


@pytest.mark.parametrize(
    ("config", "args", "message"),
    [
        ("kubernetes: {namespace: Prod_1}\n", (), "kubernetes: namespace: expected a lower-case name"),
        ("kubernetes: {labels: {team: 'a b'}}\n", (), "kubernetes: labels: label 'team': expected a value"),
        ("kubernetes: {memory: lots}\n", (), "kubernetes: memory: expected a Kubernetes quantity"),
        ("kubernetes: {nmae: x}\n", (), "kubernetes: unknown key 'nmae' (did you mean 'name'?)"),
        ("", ("--label", "team"), "--label: expected KEY=VALUE, got 'team'"),
        ("", ("--image", "a b"), "--image: expected an image reference"),
    ],
)
def test_a_bad_setting_or_flag_is_one_line_and_exit_code_4(
    checkdir: CheckDir, config: str, args: tuple[str, ...], message: str
) -> None:
    checkdir.write("checks/check_x.py", CHECKS)
    checkdir.write("fraiseql-checks.yaml", "paths: [checks]\n" + config)
    result = checkdir.run("generate", "kubernetes", *args, env=BLANK)
    assert result.ret == 4
    (line,) = result.stderr.splitlines()
    assert line.startswith("ERROR: ") and message in line, line


def test_a_check_file_that_does_not_collect_stops_generation_with_exit_code_2(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_x.py", CHECKS)
    checkdir.write("checks/check_broken.py", "import nothing_of_the_kind\n")
    checkdir.write("fraiseql-checks.yaml", "paths: [checks]\n")
    result = checkdir.run("generate", "kubernetes", env=BLANK)
    assert result.ret == 2
    assert "checks/check_broken.py" in result.stderr
    assert not (checkdir.path / "deploy").exists()


def test_a_changed_object_is_reported_by_check_and_a_stale_one_named(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_x.py", CHECKS)
    checkdir.write("fraiseql-checks.yaml", "paths: [checks]\n")
    generate(checkdir)
    deployment = checkdir.path / "deploy" / "kubernetes" / "base" / "deployment.yaml"
    deployment.write_text(deployment.read_text().replace("replicas: 1", "replicas: 2"))
    (deployment.parent / "dashboard-gone.yaml").write_text("{}\n")
    result = checkdir.run("generate", "kubernetes", "--check", env=BLANK)
    assert result.ret == 1
    result.fnmatch_lines(
        [
            "deploy/kubernetes/base/dashboard-gone.yaml: not generated any more; delete the file",
            "-  replicas: 2",
            "+  replicas: 1",
            "deploy/kubernetes/base/deployment.yaml: differs from what the generator makes",
        ]
    )


def test_an_object_too_large_for_kubectl_apply_is_a_warning_and_too_large_to_store_an_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fraiseql_checks.generate import GenerateError

    big = {"kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"x.json": "x" * (300 * 1024)}}
    manifests._check_sizes({"dashboard-x.yaml": big})
    assert "more than `kubectl apply` can annotate (256 KiB)" in capsys.readouterr().err
    big["data"] = {"x.json": "x" * (1100 * 1024)}
    with pytest.raises(GenerateError, match="more than Kubernetes keeps in one object"):
        manifests._check_sizes({"dashboard-x.yaml": big})


def test_label_and_quantity_values() -> None:
    from fraiseql_checks.kubernetes.plugin import as_labels, as_quantity

    assert as_labels({"app.kubernetes.io/part-of": "fraiseql", "release": ""}) == {
        "app.kubernetes.io/part-of": "fraiseql",
        "release": "",
    }
    for bad in ({"-x": "a"}, {"a/b/c": "a"}, {"x": "-a"}, {"x": 1}):
        with pytest.raises(ValueError):
            as_labels(bad)
    assert [as_quantity(q) for q in ("250m", "1Gi", 2, "0.5")] == ["250m", "1Gi", "2", "0.5"]


def test_matchers_and_unknown_keys_in_the_alertmanager_translation() -> None:
    from fraiseql_checks.kubernetes.alertmanagerconfig import TranslationError, matcher, spec

    assert matcher('depends_on=~"(.*,)?database(,.*)?"') == {
        "name": "depends_on",
        "matchType": "=~",
        "value": "(.*,)?database(,.*)?",
    }
    assert matcher('alertname!="A \\"quoted\\" name"')["value"] == 'A "quoted" name'
    with pytest.raises(TranslationError, match="cannot translate the matcher"):
        matcher("severity")
    with pytest.raises(TranslationError, match="cannot translate 'global'"):
        spec({"global": {"resolve_timeout": "5m"}}, "s")
    with pytest.raises(TranslationError, match="slack_configs: cannot translate 'icon_emoji'"):
        spec({"receivers": [{"name": "x", "slack_configs": [{"icon_emoji": ":fire:"}]}]}, "s")


def test_environment_references_name_each_variable_once_required_unless_always_defaulted() -> None:
    from fraiseql_checks.config import environment_references

    config = {"a": "${X} and ${Y:-d}", "b": ["$${NOT_ONE}", {"c": "${Y}"}], "d": "${Z:-}", "e": 3}
    assert environment_references(config) == {"X": True, "Y": True, "Z": False}
