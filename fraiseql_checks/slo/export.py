"""The ``slo-export`` plugin: gives a watcher its SLO series (``slo.exporter``) at start.

The exporter is imported only when a watcher starts: every run registers this plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fraiseql_checks.hookspec import hookimpl

if TYPE_CHECKING:
    from fraiseql_checks.watch.watcher import Watcher

PLUGIN_NAME = "slo-exporter"


@hookimpl
def fraiseql_watch_start(watcher: Watcher) -> None:
    from fraiseql_checks.slo.exporter import SLOExporter
    from fraiseql_checks.slo.model import SLOError
    from fraiseql_checks.slo.plugin import for_profile, slo_settings, slos_of

    try:
        slos = for_profile(slos_of(watcher.session.checks, watcher.config), watcher.config)
    except SLOError as exc:
        watcher.say(f"no SLO series: {exc}")
        return
    if not slos:
        return
    exporter = SLOExporter(watcher, slos, float(slo_settings(watcher.config)["refresh"]))
    watcher.config.pluginmanager.register(exporter, PLUGIN_NAME)
    watcher.extra_metrics.append(exporter.lines)
    exporter.start()


@hookimpl
async def fraiseql_watch_stop(watcher: Watcher) -> None:
    exporter = watcher.config.pluginmanager.get_plugin(PLUGIN_NAME)
    if exporter is not None:
        await exporter.stop()
        watcher.config.pluginmanager.unregister(exporter)
        watcher.extra_metrics.remove(exporter.lines)
