"""checks/health as shipped: every check has a severity and a runbook that exists, and collects alone."""

from __future__ import annotations

from tests.conftest import REPO, CheckDir


def test_every_health_check_has_severity_and_an_existing_runbook(checkdir: CheckDir) -> None:
    result = checkdir.run("--collect-only", str(REPO / "checks" / "health"))
    assert result.ret == 0, result.stdout
    ids = [line for line in result.outlines if "::check_" in line]
    metadata = [line for line in result.outlines if line.startswith("    severity=")]
    assert len(ids) == len(metadata) == 16
    for line in metadata:
        runbook = line.split("runbook=")[1].split()[0]
        assert (REPO / runbook).is_file(), runbook


def test_the_coherency_example_runbook_exists() -> None:
    text = (REPO / "docs" / "examples" / "check_coherency.py").read_text()
    runbook = text.split('runbook="')[1].split('"')[0]
    assert (REPO / runbook).is_file()
