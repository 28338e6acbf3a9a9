"""The ``notify`` section, ``fraiseql-check notify test|list``, and watch mode's notifications."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from fraiseql_checks.commands import Command, Commands
from fraiseql_checks.config import Config, Parser, Setting, UsageError, did_you_mean, section, write_error
from fraiseql_checks.durations import format_duration
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.notify.settings import SETTINGS, notify_settings
from fraiseql_checks.runbooks import SECTION

if TYPE_CHECKING:
    from fraiseql_checks.notify.notifier import Notifier
    from fraiseql_checks.watch.watcher import Watcher

WATCHING = "notify-watching"


@hookimpl
def fraiseql_addoption(parser: Parser) -> None:
    parser.addsetting(Setting(SECTION, section(SETTINGS), {}, "notifications: receivers, routes, runbook links"))


# ---- watch mode -----------------------------------------------------------------------------


@hookimpl
async def fraiseql_watch_start(watcher: Watcher) -> None:
    settings = notify_settings(watcher.config)
    if not settings.enabled:
        return
    from fraiseql_checks.notify.watching import Notifications

    notifications = Notifications(watcher, settings)
    watcher.config.pluginmanager.register(notifications, WATCHING)
    watcher.extra_metrics.append(notifications.metric_lines)
    await notifications.start()


@hookimpl
async def fraiseql_watch_stop(watcher: Watcher) -> None:
    notifications = watcher.config.pluginmanager.get_plugin(WATCHING)
    if notifications is not None:
        await notifications.stop()
        watcher.config.pluginmanager.unregister(notifications)
        watcher.extra_metrics.remove(notifications.metric_lines)


# ---- fraiseql-check notify ------------------------------------------------------------------


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["test", "list"], help="test: send a test message; list: show the routing")
    parser.add_argument("receiver", nargs="?", help="the receiver to send a test message to")


def run(config: Config) -> int:
    settings = notify_settings(config)
    action, name = config.option.action, config.option.receiver
    if action == "test":
        if not name:
            raise UsageError("notify test: give the receiver's name (fraiseql-check notify list shows them)")
        receiver = settings.receivers.get(name)
        if receiver is None:
            known = did_you_mean(name, settings.receivers) if settings.receivers else " (no receivers are configured)"
            raise UsageError(f"notify test: unknown receiver {name!r}{known}")
        return _test(config, receiver)
    if name:
        raise UsageError("notify list takes no receiver name")
    return _list(config)


def _test(config: Config, receiver: Notifier) -> int:
    import asyncio

    from fraiseql_checks.notify.message import Event, Message
    from fraiseql_checks.notify.notifier import DeliveryError
    from fraiseql_checks.outbox import Kind, message_key

    now = time.time()
    event = Event(
        kind=Kind.TEST,
        check_id="",
        name="fraiseql-checks",
        state="passing",
        severity="info",
        message=f"A test message from fraiseql-check notify test to {receiver.name}: if you read this, it works.",
        at=now,
    )
    key = message_key([f"test {receiver.name} {now}"])
    message = Message(receiver.name, key, (event,), test=True, templates=notify_settings(config).templates)

    async def send() -> None:
        import httpx

        from fraiseql_checks.notify.notifier import Transport

        async with httpx.AsyncClient() as client:
            transport = Transport(client)
            for item in receiver.render(message):
                await receiver.send(item, transport)

    try:
        asyncio.run(send())
    except DeliveryError as exc:
        write_error(f"notify test {receiver.name}: {exc}", config.mask)
        return 1
    print(config.mask(f"sent a test message to {receiver.name} ({receiver.describe()})"))
    return 0


def _list(config: Config) -> int:
    from fraiseql_checks.generate import GenerateError, collect_checks

    settings = notify_settings(config)
    out = sys.stdout
    mask = config.mask
    if not settings.receivers:
        out.write("no receivers: add them to the notify section (docs/notifications.md)\n")
        return 0
    out.write("receivers:\n")
    width = max(len(name) for name in settings.receivers)
    for name, receiver in settings.receivers.items():
        out.write(mask(f"  {name:<{width}}  {receiver.describe()}") + "\n")
    out.write("routes (the first that matches, unless it says continue):\n")
    for index, route in enumerate(settings.routes, 1):
        match = ", ".join(f"{key}={'|'.join(values)}" for key, values in route.match.items()) or "every check"
        more = " (continue)" if route.continue_ else ""
        out.write(f"  {index}. {match} -> {', '.join(route.receivers)}{more}\n")
    out.write(f"  default -> {', '.join(settings.default) or 'nobody'}\n")
    repeat = format_duration(settings.repeat_interval) if settings.repeat_interval else "never"
    out.write(f"group_wait {format_duration(settings.group_wait)}, repeat_interval {repeat}\n")
    try:
        checks = collect_checks(config).checks
    except (UsageError, GenerateError) as exc:
        write_error(f"the checks could not be collected: {exc}", mask)
        return int(getattr(exc, "code", 4))
    out.write(f"checks ({len(checks)}):\n")
    for check in checks:
        receivers = settings.receivers_for(check)
        unknown = settings.unknown_receivers(check)
        note = f" (unknown in @check(notify=...): {', '.join(unknown)})" if unknown else ""
        out.write(f"  {check.id} [{check.severity}] -> {', '.join(receivers) or 'nobody'}{note}\n")
    return 0


@hookimpl
def fraiseql_add_commands(commands: Commands) -> None:
    commands.add(
        Command(
            "notify",
            "notifications: send a test message to a receiver (notify test NAME), show the routing (notify list)",
            _arguments,
            run,
        )
    )
