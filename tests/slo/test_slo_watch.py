"""Watch mode exports the SLO series: good and bad seconds, objective, SLI, budget and burn rates."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from tests.support.checkdir import CheckDir
from tests.support.services import require_binary
from tests.support.watcher import WatchProcess

Watch = Callable[..., WatchProcess]
UP = "checks/check_slo.py::check_up"
DOWN = "checks/check_slo.py::check_down"
QUIET = "checks/check_slo.py::check_quiet"


def test_the_watcher_exports_slo_series_that_promtool_accepts(checkdir: CheckDir, watch: Watch) -> None:
    checkdir.write(
        "fraiseql-checks.yaml",
        """
        start_jitter: 50ms
        slo:
          refresh: 200ms
        maintenance:
          - checks: ["*::check_quiet"]
            from: "00:00"
            to: "24:00"
        """,
    )
    checkdir.write(
        "checks/check_slo.py",
        """
        from fraiseql_checks import check

        @check(interval="100ms", slo="99% / 30d")
        def check_up():
            pass

        @check(interval="100ms", slo="99.9% / 7d")
        def check_down():
            assert False, "down"

        @check(interval="100ms", slo="99% / 30d")
        def check_quiet():
            assert False, "silenced by the maintenance window"

        @check(interval="100ms")
        def check_without_slo():
            pass
        """,
    )
    checkdir.write(
        "slos.yaml",
        """
        slos:
          - name: requests
            objective: 99.5%
            sli:
              error_ratio: sum(rate(x_total[{{window}}])) / sum(rate(y_total[{{window}}]))
        """,
    )
    watcher = watch()

    def computed(samples: dict) -> bool:  # type: ignore[type-arg]
        budget = samples.get(
            ("fraiseql_check_slo_error_budget_remaining_ratio", (("check", DOWN), ("slo", "checks-check_down")))
        )
        up_budget = samples.get(
            ("fraiseql_check_slo_error_budget_remaining_ratio", (("check", UP), ("slo", "checks-check_up")))
        )
        return (
            budget is not None
            and up_budget is not None
            and (watcher.value("fraiseql_check_slo_seconds_total", check=UP, outcome="good") or 0) >= 1
        )

    watcher.wait_for(computed, timeout=30, what="the SLO gauges")
    samples = watcher.metrics()

    def value(name: str, **labels: str) -> float | None:
        return samples.get((name, tuple(sorted(labels.items()))))

    # The counters: each run adds its interval (0.1 s); silenced runs add nothing.
    assert value("fraiseql_check_slo_seconds_total", check=UP, outcome="bad") == 0
    assert value("fraiseql_check_slo_seconds_total", check=DOWN, outcome="good") == 0
    assert (value("fraiseql_check_slo_seconds_total", check=DOWN, outcome="bad") or 0) >= 0.1
    assert value("fraiseql_check_slo_seconds_total", check=QUIET, outcome="bad") == 0
    assert not any(
        key[1] and ("check", "checks/check_slo.py::check_without_slo") in key[1]
        for key in samples
        if key[0].startswith("fraiseql_check_slo_")
    )

    up, down = ("checks-check_up", UP), ("checks-check_down", DOWN)
    assert value("fraiseql_check_slo_objective_ratio", slo=up[0], check=up[1]) == 0.99
    assert value("fraiseql_check_slo_objective_ratio", slo=down[0], check=down[1]) == 0.999
    assert value("fraiseql_check_slo_objective_ratio", slo="fraiseql-requests", check="") == 0.995
    assert value("fraiseql_check_slo_sli_ratio", slo=down[0], check=down[1], window="period") == 0
    assert value("fraiseql_check_slo_error_budget_remaining_ratio", slo=down[0], check=down[1]) == -999
    assert value("fraiseql_check_slo_burn_rate", slo=down[0], check=down[1], window="5m") == 1000
    assert value("fraiseql_check_slo_error_budget_remaining_ratio", slo=up[0], check=up[1]) in (1, None)
    assert value("fraiseql_check_slo_error_budget_remaining_ratio", slo=up[0], check=up[1]) == 1
    # The silenced check has no data: unknown, so no SLI and no budget, rather than 100%.
    assert value("fraiseql_check_slo_sli_ratio", slo="checks-check_quiet", check=QUIET, window="period") is None
    # The request SLO needs Prometheus, which is not configured: its objective only.
    assert value("fraiseql_check_slo_error_budget_remaining_ratio", slo="fraiseql-requests", check="") is None
    assert (value("fraiseql_check_slo_last_update_timestamp_seconds") or 0) > 0

    promtool = require_binary("promtool")
    done = subprocess.run([promtool, "check", "metrics"], input=watcher.metrics_text(), capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "", done.stdout + done.stderr
    assert watcher.stop() == 0
    assert "SLO fraiseql-requests cannot be computed: Prometheus is not configured" in watcher.stdout
    assert watcher.stdout.count("cannot be computed") == 1  # said once, not every refresh
