"""``fraiseql-check init``: ask (or read the flags), probe FraiseQL, write the files, run the checks once.

    fraiseql-check init                                   # asks, on a terminal
    fraiseql-check init --yes --url http://api:8000 --database-url "$DATABASE_URL" --suites health,alerts

On a terminal without ``--yes`` every answer is asked for, with the flag's value,
else the environment's (``FRAISEQL_URL``, ``FRAISEQL_METRICS_TOKEN``, ``DATABASE_URL``,
``REDIS_URL``, ``PROMETHEUS_URL``) as the default. Otherwise nothing is asked.
Exit codes: 0 written (whatever the first run of the checks gave); 4 bad usage, or
a file exists and ``--force`` was not given (nothing is written then).
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

from fraiseql_checks import suites
from fraiseql_checks.config import Config, Setting, UsageError, did_you_mean
from fraiseql_checks.init import files
from fraiseql_checks.init.probe import probe
from fraiseql_checks.masking import mask_urls
from fraiseql_checks.targets.plugin import CACHE_SETTINGS, DATABASE_SETTINGS, FRAISEQL_SETTINGS, PROMETHEUS_SETTINGS
from fraiseql_checks.targets.profiles import PROFILES

DEFAULT_URL = "http://localhost:8000"


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("init_directory", nargs="?", default=".", metavar="DIR", help="where to write (default: .)")
    parser.add_argument("--url", dest="init_url", metavar="URL", help="the FraiseQL server (default: $FRAISEQL_URL)")
    parser.add_argument(
        "--database-url", dest="init_database_url", metavar="DSN", help="PostgreSQL (default: $DATABASE_URL)"
    )
    parser.add_argument("--redis-url", dest="init_redis_url", metavar="URL", help="Redis (default: $REDIS_URL)")
    parser.add_argument(
        "--prometheus-url", dest="init_prometheus_url", metavar="URL", help="Prometheus (default: $PROMETHEUS_URL)"
    )
    parser.add_argument(
        "--profile",
        dest="init_profile",
        choices=sorted(PROFILES),
        help="the FraiseQL version (default: told from the server's answers)",
    )
    parser.add_argument(
        "--suites",
        dest="init_suites",
        metavar="LIST",
        help=f"shipped suites to run, comma-separated: {', '.join([*suites.known(), suites.ALL])} "
        "(default: health, and alerts with Prometheus)",
    )
    parser.add_argument("--yes", dest="init_yes", action="store_true", help="ask nothing: flags and environment only")
    parser.add_argument("--force", dest="init_force", action="store_true", help="replace files that exist")
    parser.add_argument("--no-run", dest="init_no_run", action="store_true", help="do not run the checks once")


class Prompter(Protocol):
    """How the wizard asks: a terminal's ``input``, or a test's answers."""

    def ask(self, question: str, default: str = "") -> str: ...

    def secret(self, question: str) -> str: ...


class TerminalPrompter:
    """Questions on the terminal; a secret is read without echo."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def ask(self, question: str, default: str = "") -> str:
        shown = f" [{mask_urls(default)}]" if default else ""
        answer = input(f"{question}{shown}: ").strip()
        return answer or default

    def secret(self, question: str) -> str:
        return getpass.getpass(f"{question}: ").strip()


def _yes(answer: str, default: bool) -> bool:
    """A yes/no answer; Enter alone is ``default``."""
    answer = answer.strip().lower()
    return default if not answer else answer in ("y", "yes")


def _setting(settings: Sequence[Setting], name: str) -> Callable[[Any], Any]:
    return next(s for s in settings if s.name == name).type


def _checked(value: str, check: Callable[[Any], Any], what: str) -> str:
    """``value`` if the config would accept it; ``UsageError`` naming the flag otherwise."""
    try:
        check(value)
    except ValueError as exc:
        raise UsageError(f"{what}: {exc}") from None
    return value


def parse_suites(text: str) -> list[str]:
    """``"health, alerts"`` → ``["health", "alerts"]``, as the ``suites`` setting reads them
    (``all`` stays ``all``); ``UsageError`` for a suite that is not shipped."""
    names = [name for name in text.replace(",", " ").split() if name]
    try:
        suites.as_suites(names)
    except ValueError as exc:
        raise UsageError(f"--suites: {exc}") from None
    return list(dict.fromkeys(names))


@dataclasses.dataclass
class Wizard:
    """One run of ``init``: where the answers come from and where it writes what it says."""

    options: argparse.Namespace
    environ: Mapping[str, str]
    out: IO[str]
    prompter: Prompter | None
    timeout: float

    def say(self, line: str = "") -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def _ask_url(self, question: str, given: str | None, check: Callable[[Any], Any], flag: str) -> str | None:
        """A URL from the flag or the environment, or asked for until the config would accept it."""
        if self.prompter is None:
            return _checked(given, check, flag) if given else None
        while True:
            answer = self.prompter.ask(question, given or "")
            if answer in ("", "-"):
                return None
            try:
                check(answer)
            except ValueError as exc:
                self.say(f"  {flag}: {mask_urls(str(exc))}")
                given = None
                continue
            return answer

    def fraiseql(self) -> tuple[str | None, str | None, str | None, str]:
        """The FraiseQL URL, its metrics token, the profile and why that profile."""
        check = _setting(FRAISEQL_SETTINGS, "url")
        url = self.options.init_url or self.environ.get("FRAISEQL_URL")
        token = self.environ.get("FRAISEQL_METRICS_TOKEN") or None
        profile = self.options.init_profile
        while True:
            if self.prompter is not None:
                url = self._ask_url("FraiseQL URL (Enter '-' to skip)", url or DEFAULT_URL, check, "--url")
                if url and not token:
                    token = self.prompter.secret("FraiseQL metrics token, FRAISEQL_METRICS_TOKEN (Enter for none)")
                    token = token or None
            elif url:
                _checked(url, check, "--url")
            if not url:
                return None, None, profile, ""
            # Several replicas: the first one tells the version.
            found = probe(url.split(",")[0].strip(), token, self.timeout)
            self.say(f"  {mask_urls(found.summary())}")
            if found.reachable or self.prompter is None:
                break
            if _yes(self.prompter.ask(f"Keep {mask_urls(url)} anyway? (y/N)"), False):
                break
        if profile is None and self.prompter is not None:
            while True:
                answer = self.prompter.ask(f"Profile ({', '.join(sorted(PROFILES))})", found.profile)
                if answer in PROFILES:
                    profile = answer
                    break
                self.say(f"  unknown profile {answer!r}{did_you_mean(answer, PROFILES)}")
        evidence = found.evidence if profile in (None, found.profile) else "given"
        return url, token, profile or found.profile, evidence

    def shipped_suites(self, prometheus: str | None) -> list[str]:
        given = self.options.init_suites
        default = "health, alerts" if prometheus else "health"
        if self.prompter is None:
            return parse_suites(given if given is not None else default)
        while True:
            known = ", ".join([*suites.known(), suites.ALL])
            answer = self.prompter.ask(f"Shipped suites to run ({known})", given or default)
            try:
                return parse_suites(answer)
            except UsageError as exc:
                self.say(f"  {str(exc).removeprefix('--suites: ')}")
                given = None

    def answers(self) -> files.Answers:
        url, token, profile, evidence = self.fraiseql()
        env, opt = self.environ, self.options
        database = self._ask_url(
            "PostgreSQL URL for the db fixture, DATABASE_URL (Enter '-' to skip)",
            opt.init_database_url or env.get("DATABASE_URL"),
            _setting(DATABASE_SETTINGS, "dsn"),
            "--database-url",
        )
        redis = self._ask_url(
            "Redis URL for the cache fixture, REDIS_URL (Enter '-' to skip)",
            opt.init_redis_url or env.get("REDIS_URL"),
            _setting(CACHE_SETTINGS, "url"),
            "--redis-url",
        )
        prometheus = self._ask_url(
            "Prometheus URL for the prom fixture, PROMETHEUS_URL (Enter '-' to skip)",
            opt.init_prometheus_url or env.get("PROMETHEUS_URL"),
            _setting(PROMETHEUS_SETTINGS, "url"),
            "--prometheus-url",
        )
        return files.Answers(
            url=url,
            metrics_token=token,
            profile=profile if url else None,
            profile_evidence=evidence,
            database_url=database,
            redis_url=redis,
            prometheus_url=prometheus,
            suites=self.shipped_suites(prometheus),
        )


def _refuse(existing: Sequence[str]) -> UsageError:
    names = ", ".join(existing)
    verb = "exists" if len(existing) == 1 else "exist"
    return UsageError(f"{names} {verb}: nothing written (--force replaces it)")


def secrets_environment(answers: files.Answers) -> dict[str, str]:
    """The environment the config's ``${NAME}`` references and the targets read, from the answers."""
    given = {
        "FRAISEQL_URL": answers.url,
        "FRAISEQL_METRICS_TOKEN": answers.metrics_token,
        "DATABASE_URL": answers.database_url,
        "REDIS_URL": answers.redis_url,
        "PROMETHEUS_URL": answers.prometheus_url,
    }
    return {name: value for name, value in given.items() if value}


def run_checks(directory: Path, answers: files.Answers, environ: Mapping[str, str]) -> int:
    """``fraiseql-check`` in ``directory``, as the user would run it next; its exit code."""
    env = {**environ, **secrets_environment(answers)}
    return subprocess.run([sys.executable, "-m", "fraiseql_checks"], cwd=directory, env=env, check=False).returncode


def next_steps(answers: files.Answers) -> list[str]:
    lines = ["Next:"]
    needed = files.secrets(answers)
    if needed:
        exports = " ".join(f"{name}=..." for name in needed)
        lines.append(f"  export {exports}   # the config reads these secrets from the environment")
    lines += [
        "  fraiseql-check --watch --listen 0.0.0.0:9470   # every check on its interval; /metrics, a status page at /",
        "  fraiseql-check generate dashboards alerts      # Grafana dashboards and Prometheus alert rules",
        "  docs: docs/init.md, docs/writing-checks.md, docs/watch-mode.md, docs/dashboards.md",
    ]
    return lines


def run(config: Config) -> int:
    options = config.option
    out = sys.stdout
    directory = (config.invocation_dir / options.init_directory).resolve()
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{options.init_directory}: not a folder")
    force = bool(options.init_force)
    interactive = not options.init_yes and sys.stdin.isatty()
    # Refuse before asking anything: the paths do not depend on the answers.
    _, existing = files.plan(directory, files.Answers(), force)
    if existing and not force:
        raise _refuse(existing)
    wizard = Wizard(
        options,
        config.environ,
        out,
        TerminalPrompter(out) if interactive else None,
        float(config.get("http_timeout")),
    )
    answers = wizard.answers()
    planned, _ = files.plan(directory, answers, force)
    shown = [f"{f.path}{' (adds [tool.fraiseql-checks])' if f.edits_existing else ''}" for f in planned]
    prompter = wizard.prompter
    if prompter is not None and not _yes(prompter.ask(f"Write {', '.join(shown)}? (Y/n)"), True):
        wizard.say("nothing written")
        return 0
    files.write(directory, planned)
    wizard.say(f"wrote {', '.join(shown)} in {os.path.relpath(directory, config.invocation_dir)}")
    if not options.init_no_run:
        wizard.say("running the checks once: fraiseql-check")
        code = run_checks(directory, answers, config.environ)
        wizard.say(f"the first run exited {code} ({'all passed' if code == 0 else 'see above'})")
    for line in next_steps(answers):
        wizard.say(line)
    return 0
