"""``generate helm``: the chart lints, and ``helm template`` renders the very objects kustomize
renders from the base and its HA overlay, with the release's namespace and the values."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kubernetes.test_manifests import DEPLOY, GoYAML, kustomize
from tests.support import REPO
from tests.support.services import require_binary
from tests.support.validators import kubernetes_tools

CHART = REPO / "deploy" / "helm" / "fraiseql-check"


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    cached = kubernetes_tools() / "helm"
    binary = str(cached) if cached.exists() else require_binary("helm")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120)


def template(chart: Path = CHART, *args: str) -> list[dict[str, Any]]:
    done = helm("template", "checks", str(chart), *args)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.load_all(done.stdout, Loader=GoYAML) if doc]


def keyed(documents: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in documents}


def test_the_chart_lints() -> None:
    done = helm("lint", str(CHART))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout


def test_helm_renders_what_kustomize_renders_from_the_base() -> None:
    assert keyed(template(CHART, "--namespace", "monitoring")) == keyed(kustomize(DEPLOY))


def test_ha_true_renders_the_ha_overlay() -> None:
    assert keyed(template(CHART, "--namespace", "monitoring", "--set", "ha=true")) == keyed(
        kustomize(DEPLOY / "overlays" / "ha")
    )


def test_the_release_namespace_image_and_labels_apply_to_every_object() -> None:
    rendered = template(
        CHART, "--namespace", "prod", "--set", "image=registry.example.com/checks:2", "--set", "labels.release=kps"
    )
    assert {d["metadata"]["namespace"] for d in rendered} == {"prod"}
    assert {d["metadata"]["labels"]["release"] for d in rendered} == {"kps"}
    (deployment,) = [d for d in rendered if d["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/checks:2"


@pytest.mark.parametrize(
    ("path", "text", "message"),
    [
        ("templates/objects.yaml", "{{ .Values.image | nosuchfunction }}\n", "nosuchfunction"),
        ("files/deployment.yaml", "spec: [unclosed\n", "deployment.yaml"),
    ],
)
def test_a_broken_chart_fails(tmp_path: Path, path: str, text: str, message: str) -> None:
    chart = tmp_path / "fraiseql-check"
    shutil.copytree(CHART, chart)
    (chart / path).write_text(text)
    done = helm("template", "checks", str(chart))
    assert done.returncode != 0
    assert message in done.stderr or "error" in done.stderr.lower(), done.stderr
