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


def main() -> None:
    fetch_junit_xsd()
    build_grafana_dashboard_schema()
    build_fraiseql_v1()
    print(f"validators ready in {CACHE}")


if __name__ == "__main__":
    main()
