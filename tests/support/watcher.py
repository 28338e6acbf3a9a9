"""A ``fraiseql-check --watch`` process under test, and its /metrics read back."""

from __future__ import annotations

import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.support.checkdir import CheckDir
from tests.support.services import free_port, wait_until

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_metrics(text: str) -> Samples:
    """Every sample of an exposition text, keyed by (name, sorted labels); parsed by prometheus_client."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


class WatchProcess:
    """A running watcher: its address, its pages, and how it ended."""

    def __init__(
        self, checkdir: CheckDir, args: tuple[str, ...], env: dict[str, str] | None, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.process = checkdir.popen("--watch", "--listen", self.address, *args, env=env)
        self.stdout = ""
        self.stderr = ""

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://{self.address}{path}", timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def metrics_text(self) -> str:
        status, body = self.get("/metrics")
        assert status == 200, body
        return body

    def metrics(self) -> Samples:
        return parse_metrics(self.metrics_text())

    def value(self, metric: str, **labels: str) -> float | None:
        return self.metrics().get((metric, tuple(sorted(labels.items()))))

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                out, err = self.process.communicate()
                raise AssertionError(f"the watcher exited with {self.process.returncode}:\n{out}\n{err}")
            try:
                return self.get("/readyz")[0] == 200
            except OSError:
                return False

        wait_until(ready, timeout, what="/readyz to answer 200")

    def wait_for(self, condition: Callable[[Samples], Any], timeout: float = 30.0, what: str = "") -> Any:
        """Poll /metrics until ``condition(samples)`` is truthy."""
        return wait_until(lambda: condition(self.metrics()), timeout, every=0.1, what=what)

    def runs(self, check: str, outcome: str = "passed") -> float:
        return self.value("fraiseql_check_runs_total", check=check, outcome=outcome) or 0.0

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send ``signum`` and wait for the exit code; the output is kept."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            self.stdout, self.stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.stdout, self.stderr = self.process.communicate()
            raise
        return self.process.returncode
