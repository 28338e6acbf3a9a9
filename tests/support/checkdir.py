"""A pytester-like check folder that runs the real CLI, as a user would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass
class RunResult:
    ret: int
    stdout: str
    stderr: str

    @property
    def outlines(self) -> list[str]:
        return self.stdout.splitlines()

    def fnmatch_lines(self, patterns: list[str]) -> None:
        pytest.LineMatcher(self.outlines).fnmatch_lines(patterns)

    def stderr_lines(self, patterns: list[str]) -> None:
        pytest.LineMatcher(self.stderr.splitlines()).fnmatch_lines(patterns)


class CheckDir:
    """A temporary project folder: write check files and config, run ``fraiseql-check``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, relpath: str, text: str) -> Path:
        target = self.path / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return target

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("FRAISEQL_", "DATABASE_URL", "REDIS_URL", "PROMETHEUS_URL"))
        }
        env.update({"COLUMNS": "80", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"})
        env.pop("FORCE_COLOR", None)
        env.update(extra)
        return env

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "fraiseql_checks", *args]

    def run(self, *args: str, timeout: float = 120, env: dict[str, str] | None = None) -> RunResult:
        """Run the CLI as a user would, in this folder, and capture what it prints."""
        done = subprocess.run(
            self.command(*args),
            cwd=self.path,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(**(env or {})),
        )
        return RunResult(done.returncode, done.stdout, done.stderr)

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args),
            cwd=self.path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(**(env or {})),
        )

    def run_json(self, *args: str, **kwargs: Any) -> tuple[RunResult, dict[str, Any]]:
        """Run with ``--report-json`` and return the parsed report too."""
        report = self.path / "report.json"
        result = self.run(*args, "--report-json", str(report), **kwargs)
        return result, json.loads(report.read_text())

    def outcomes(self, *args: str, **kwargs: Any) -> tuple[RunResult, dict[str, str]]:
        result, report = self.run_json(*args, **kwargs)
        return result, {r["id"]: r["outcome"] for r in report["results"]}


def interrupt(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
