"""What ``fraiseql-check init`` writes: the config, ``checks/`` with a conftest and a check, the CI jobs.

Every file is planned before any is written, so a refusal (a file exists, no
``--force``) leaves the folder as it was. Secrets never reach a file: a URL holding
a password, or a token, becomes ``${VARIABLE}``, read from the environment when the
config loads (docs/targets.md names the variables).
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from fraiseql_checks.config import TOOL_TABLE, YAML_NAME, UsageError, environment_references
from fraiseql_checks.init import ci
from fraiseql_checks.masking import SECRET_PARAMETER_WORDS, url_passwords

PYPROJECT = "pyproject.toml"
TOKEN_VARIABLE = "FRAISEQL_METRICS_TOKEN"
CONFTEST = "checks/conftest.py"
EXAMPLE_CHECK = "checks/check_api.py"


@dataclasses.dataclass(frozen=True)
class Answers:
    """What the wizard was told (flags, environment or prompts) and what it found."""

    url: str | None = None
    #: Never written: the config names ``FRAISEQL_METRICS_TOKEN`` instead.
    metrics_token: str | None = None
    profile: str | None = None
    #: Why that profile, for a comment beside it ("its /metrics shows 60 series only it has").
    profile_evidence: str = ""
    database_url: str | None = None
    redis_url: str | None = None
    prometheus_url: str | None = None
    suites: Sequence[str] = ()


@dataclasses.dataclass(frozen=True)
class File:
    """A file to write: ``path`` relative to the folder; ``edits_existing`` when the text
    is an existing file's with our tables added (``pyproject.toml``)."""

    path: str
    text: str
    edits_existing: bool = False


def without_password(url: str) -> str:
    """``url`` without the password of its userinfo and its password-like query parameters."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user = parts.netloc.rsplit("@", 1)[0].split(":", 1)[0]
        netloc = f"{user}@{parts.netloc.rsplit('@', 1)[1]}" if user else parts.netloc.rsplit("@", 1)[1]
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in pairs if not any(word in k.lower() for word in SECRET_PARAMETER_WORDS)]
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=urllib.parse.urlencode(query)))


def _reference(url: str, variable: str) -> str:
    """``url`` as written to the config: when it holds a password, ``${VARIABLE:-the URL without it}``:
    the environment gives the whole URL, and the config still loads where it is not set."""
    return f"${{{variable}:-{without_password(url)}}}" if url_passwords(url) else url


def settings(answers: Answers) -> list[tuple[str, list[tuple[str, object, str]]]]:
    """The config as (table, [(key, value, comment)]); table ``""`` is the top level."""
    top: list[tuple[str, object, str]] = [("paths", ["checks"], "your own checks")]
    if answers.suites:
        top.append(("suites", list(answers.suites), "the shipped suites that run alongside them"))
    tables: list[tuple[str, list[tuple[str, object, str]]]] = [("", top)]
    if answers.url:
        fraiseql: list[tuple[str, object, str]] = [("url", _reference(answers.url, "FRAISEQL_URL"), "")]
        if answers.profile:
            fraiseql.append(("profile", answers.profile, answers.profile_evidence))
        if answers.metrics_token:
            fraiseql.append(
                ("metrics_token", None, f"from {TOKEN_VARIABLE} in the environment: a secret, never written here")
            )
        tables.append(("fraiseql", fraiseql))
    if answers.database_url:
        tables.append(("database", [("dsn", _reference(answers.database_url, "DATABASE_URL"), "")]))
    if answers.redis_url:
        tables.append(("cache", [("url", _reference(answers.redis_url, "REDIS_URL"), "")]))
    if answers.prometheus_url:
        tables.append(("prometheus", [("url", _reference(answers.prometheus_url, "PROMETHEUS_URL"), "")]))
    return tables


def _scalar(value: object) -> str:
    """A string or a list of strings, in the syntax YAML and TOML share (JSON's)."""
    return json.dumps(value)


def _line(key: str, value: object, comment: str, separator: str) -> str:
    """``key = value  # comment``; a ``None`` value is only said in a comment (read from the environment)."""
    if value is None:
        return f"# {key}{separator.rstrip()} {comment}"
    return f"{key}{separator}{_scalar(value)}" + (f"  # {comment}" if comment else "")


HEADER = (
    "written by `fraiseql-check init` (docs/init.md).\n"
    "# Secrets are not written here: ${NAME:-default} is the environment variable NAME, else the default."
)


def yaml_config(answers: Answers) -> str:
    """``fraiseql-checks.yaml``."""
    out = [f"# fraiseql-checks.yaml, {HEADER}"]
    for table, values in settings(answers):
        indent = ""
        if table:
            out.append(f"{table}:")
            indent = "  "
        for key, value, comment in values:
            out.append(indent + _line(key, value, comment, ": "))
    return "\n".join(out) + "\n"


def toml_tables(answers: Answers) -> str:
    """The ``[tool.fraiseql-checks]`` tables to append to ``pyproject.toml``."""
    out = [f"# fraiseql-checks, {HEADER}"]
    for table, values in settings(answers):
        out.append(f"[tool.{TOOL_TABLE}{'.' + table if table else ''}]")
        out += [_line(key, value, comment, " = ") for key, value, comment in values]
        out.append("")
    return "\n".join(out)


def secrets(answers: Answers) -> list[str]:
    """The secrets the config reads from the environment: what CI and the shell must provide."""
    values = [value for _, table in settings(answers) for _, value, _ in table]
    names = set(environment_references(values))
    if answers.metrics_token:
        names.add(TOKEN_VARIABLE)
    return sorted(names)


CONFTEST_TEXT = '''\
"""Fixtures the checks under checks/ share (docs/writing-checks.md#fixtures).

Written by `fraiseql-check init`: add your own. A check asks for a fixture by naming
it as an argument; the built-in ones (graphql, fraiseql, db, cache, prom, http) are
in docs/targets.md.
"""

from fraiseql_checks import fixture


@fixture(scope="session")
def smoke_query(config):
    """The GraphQL query check_api.py sends: `fraiseql.smoke_query` in the config.

    A query that reads your own data makes a better smoke test, for example
    "{ items(limit: 1) { id } }".
    """
    return config.get("fraiseql")["smoke_query"]
'''

EXAMPLE_CHECK_TEXT = '''\
"""Your own checks of your FraiseQL API. Written by `fraiseql-check init`: change them to fit.

Each function named check_* is a check (docs/writing-checks.md). The graphql fixture
posts to your server's GraphQL endpoint (`fraiseql.url` in the config, or FRAISEQL_URL);
without a URL the check is skipped.
"""

from fraiseql_checks import check, record, stopwatch


@check(interval="1m", timeout="10s", severity="critical", tags=["api"], slo="99.9% / 30d")
async def check_graphql_answers_smoke_query(graphql, smoke_query):
    """The API answers the smoke query with data and no errors."""
    with stopwatch() as took:
        result = await graphql.execute(smoke_query)
    record("smoke_query_seconds", took.seconds)
    assert not result.errors, result.error_messages
    assert result.data, f"no data in the answer to {smoke_query}"
'''

_OUR_TABLE = re.compile(rf"""^\s*\[\[?\s*tool\s*\.\s*(?:"{TOOL_TABLE}"|'{TOOL_TABLE}'|{TOOL_TABLE})\s*[.\]]""")
_ANY_TABLE = re.compile(r"^\s*\[")


def has_our_table(pyproject_text: str, path: str = PYPROJECT) -> bool:
    """Whether the text holds ``[tool.fraiseql-checks]``; ``UsageError`` when it is not TOML."""
    try:
        data = tomllib.loads(pyproject_text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from None
    tool = data.get("tool")
    return isinstance(tool, dict) and TOOL_TABLE in tool


def without_our_tables(path: Path, text: str) -> str:
    """``pyproject.toml``'s text without its ``[tool.fraiseql-checks...]`` tables; ``UsageError``
    when they are not written as tables of their own (a dotted key, an inline table)."""
    kept: list[str] = []
    skipping = False
    for line in text.splitlines(keepends=True):
        if _ANY_TABLE.match(line):
            skipping = bool(_OUR_TABLE.match(line))
        if not skipping:
            kept.append(line)
    result = "".join(kept)
    try:
        left = has_our_table(result)
    except UsageError:
        left = True
    if left:
        raise UsageError(
            f"{path}: cannot replace [tool.{TOOL_TABLE}]: it is not written as tables of its own; remove it by hand"
        )
    return result.rstrip("\n") + "\n" if result.strip() else ""


def config_file(directory: Path, answers: Answers, force: bool) -> tuple[File, str | None]:
    """The config to write, and the name of the file it would overwrite (``None`` if none).

    An existing ``pyproject.toml`` gets the ``[tool.fraiseql-checks]`` tables appended
    (replacing ours with ``force``); otherwise ``fraiseql-checks.yaml`` is written,
    which is also what an existing one of those is read from first."""
    yaml_path = directory / YAML_NAME
    pyproject = directory / PYPROJECT
    if yaml_path.exists() or not pyproject.is_file():
        return File(YAML_NAME, yaml_config(answers)), YAML_NAME if yaml_path.exists() else None
    text = pyproject.read_text(encoding="utf-8")
    clash = f"{PYPROJECT} [tool.{TOOL_TABLE}]" if has_our_table(text, str(pyproject)) else None
    if clash and force:
        text = without_our_tables(pyproject, text)
    base = text if text.endswith("\n") or not text else text + "\n"
    return File(PYPROJECT, (base + "\n" if base else "") + toml_tables(answers), edits_existing=True), clash


def plan(directory: Path, answers: Answers, force: bool = False) -> tuple[list[File], list[str]]:
    """Every file to write, and the ones that exist already (what ``--force`` would replace)."""
    config, clash = config_file(directory, answers, force)
    secret_names = secrets(answers)
    files = [
        config,
        File(CONFTEST, CONFTEST_TEXT),
        File(EXAMPLE_CHECK, EXAMPLE_CHECK_TEXT),
        File(ci.GITHUB_PATH, ci.github_workflow(secret_names)),
        File(ci.GITLAB_PATH, ci.gitlab_jobs(secret_names)),
    ]
    existing = [clash] if clash else []
    existing += [f.path for f in files[1:] if (directory / f.path).exists()]
    return files, existing


def write(directory: Path, files: Sequence[File]) -> None:
    """Write the planned files (creating folders); ``UsageError`` naming the file that
    could not be written (a read-only folder, a path through a file)."""
    written: list[str] = []
    for file in files:
        target = directory / file.path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(file.text, encoding="utf-8")
        except OSError as exc:
            done = f" (written before it: {', '.join(written)})" if written else ""
            raise UsageError(f"cannot write {target}: {exc.strerror or exc}{done}") from None
        written.append(file.path)
