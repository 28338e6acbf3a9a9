"""What alerts cost: generating rule files for many checks, and one ``@alert`` run against Prometheus.

Run: ``.venv/bin/python benchmarks/alerts.py`` (needs ``prometheus`` on the PATH).
Prints one table; numbers go to docs/performance.md, section "Alert rules (issue 5)".
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fraiseql_checks.alerting.alerts import PENDING_KEY, evaluate, pending_alerts  # noqa: E402
from fraiseql_checks.alerting.rules import rule_files, rule_settings  # noqa: E402
from fraiseql_checks.cli import configure  # noqa: E402
from fraiseql_checks.core.session import Session  # noqa: E402
from fraiseql_checks.spec import spec_of  # noqa: E402
from fraiseql_checks.targets.http import HTTPClient  # noqa: E402
from fraiseql_checks.targets.prometheus import PrometheusClient  # noqa: E402
from fraiseql_checks.trace import RunContext, current_run, new_span_id, new_trace_id  # noqa: E402
from tests.support.services import prometheus  # noqa: E402

CHECKS = 1000
PER_FILE = 50


def write_checks(root: Path) -> None:
    """``CHECKS`` ordinary checks in files of ``PER_FILE``, and the 15 seed alerts."""
    (root / "checks").mkdir()
    for index in range(CHECKS // PER_FILE):
        body = ["from fraiseql_checks import check", ""]
        for number in range(PER_FILE):
            body += [
                '@check(interval="30s", severity="warning", failure_threshold=3,'
                f' runbook="docs/runbooks/x{number}.md")',
                f"def check_{number}(db):",
                f'    """Check {number} of file {index}."""',
                "",
            ]
        (root / "checks" / f"check_many_{index}.py").write_text("\n".join(body))
    (root / "checks" / "alerts").mkdir()
    for source in (REPO / "checks" / "alerts").glob("check_*.py"):
        (root / "checks" / "alerts" / source.name).write_text(source.read_text())
    (root / "fraiseql-checks.yaml").write_text("paths: [checks]\n")


def median_ms(call: Callable[[], object], rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def generation(root: Path) -> list[tuple[str, str]]:
    config, _ = configure(["checks"], invocation_dir=root)
    session = Session(config)
    collect = median_ms(lambda: Session(config).collect(), 3)
    session.collect()
    settings = rule_settings(config)
    files = rule_files(session, settings)
    rules = sum(text.count("- alert:") for text in files.values())
    generate = median_ms(lambda: rule_files(session, settings))
    alerts = [spec_of(c.func) for c in session.checks if c.spec.alert is not None]
    parse = median_ms(lambda: [spec.alert.validate() for spec in alerts if spec is not None], 20)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "fraiseql_checks", "generate", "alerts", "-o", str(root / "out")],
            cwd=root,
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - start)
    return [
        (f"collect {CHECKS} checks + 15 `@alert` checks (cached rewrite)", f"{collect:.0f} ms"),
        (f"`rule_files`: {rules} rules in {len(files)} files, both profiles", f"{generate:.0f} ms"),
        ("parse the PromQL of the 15 seed alerts, every profile (collection)", f"{parse:.2f} ms"),
        (f"`fraiseql-check generate alerts` end to end, {CHECKS} checks", f"{statistics.median(times):.2f} s"),
    ]


async def per_run(call: Callable[[], Awaitable[object]], n: int = 200) -> float:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            await call()
        times.append((time.perf_counter() - start) / n)
    return statistics.median(times) * 1000


async def evaluation(url: str, root: Path) -> list[tuple[str, str]]:
    config, _ = configure(["checks"], invocation_dir=root)
    session = Session(config)
    session.collect()
    (check,) = [c for c in session.checks if c.spec.alert is not None and c.function_name == "check_database_down"]
    spec = check.spec.alert
    token = current_run.set(RunContext(check, config, new_trace_id(), new_span_id()))
    try:
        async with HTTPClient() as http:
            client = PrometheusClient(http, url)
            # DatabaseDown reads fraiseql_check_up: nothing here, so the instant query only.
            quiet = await per_run(lambda: evaluate(spec, client, config))
            # A series that is true: `up{job="self"} == 1` held for 1m, looked back over on a first run.
            held = type(spec)(**{**spec.__dict__, "exprs": {"fraiseql-v2": 'up{job="self"} == 1'}, "for_": 60.0})

            async def first_run() -> None:
                config.stash.pop(PENDING_KEY, None)
                try:
                    await evaluate(held, client, config)
                except BaseException:  # pending or firing: either is a run
                    pass

            async def later_run() -> None:
                try:
                    await evaluate(held, client, config)
                except BaseException:
                    pass

            lookback = await per_run(first_run, 100)
            pending_alerts(config)
            await later_run()
            remembered = await per_run(later_run, 100)
    finally:
        current_run.reset(token)
    return [
        ("`@alert` run, nothing true (one instant query)", f"{quiet:.2f} ms"),
        ("`@alert` first run, a series true, `for_` 1m (instant + range query)", f"{lookback:.2f} ms"),
        ("`@alert` later run in watch mode (instant query, state kept)", f"{remembered:.2f} ms"),
    ]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_checks(root)
        table = generation(root)
        with prometheus([]) as server:
            server.wait_for_series('up{job="self"}')
            table += asyncio.run(evaluation(server.url, root))
    width = max(len(name) for name, _ in table)
    print(f"| {'what':<{width}} | time |")
    print(f"|{'-' * (width + 2)}|------|")
    for name, value in table:
        print(f"| {name:<{width}} | {value} |")


if __name__ == "__main__":
    main()
