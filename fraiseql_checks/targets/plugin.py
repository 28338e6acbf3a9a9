"""What checks watch — the FraiseQL server, its database, its cache and Prometheus — and their fixtures.

Each target comes from the config file (``fraiseql``, ``database``, ``cache``,
``prometheus`` tables) or from the environment, under the names FraiseQL users
already set; the environment wins. A check that needs a target nobody configured
is skipped with the setting to set, or is an error with ``--require-targets`` (for CI).

The fixtures ``http``, ``fraiseql``, ``graphql``, ``db``, ``cache`` and ``prom`` are
session-scoped. Their clients live in ``http.py``, ``fraiseql.py``, ``database.py``,
``cache.py`` and ``prometheus.py``, imported when a check first asks for one, so a
run that uses none of them does not pay for importing httpx, asyncpg or redis.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, NoReturn

from fraiseql_checks.config import (
    Config,
    Parser,
    Setting,
    as_duration,
    as_positive_int,
    as_str,
    one_of,
    resolve_section,
    section,
)
from fraiseql_checks.core._pytest_compat import Skipped
from fraiseql_checks.core.fixtures import fixture
from fraiseql_checks.errors import TargetNotConfigured
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.masking import mask_urls
from fraiseql_checks.stash import StashKey

if TYPE_CHECKING:
    from fraiseql_checks.targets.cache import Cache
    from fraiseql_checks.targets.database import Database
    from fraiseql_checks.targets.fraiseql import FraiseQLClient, GraphQLClient
    from fraiseql_checks.targets.http import HTTPClient
    from fraiseql_checks.targets.profiles import Profile
    from fraiseql_checks.targets.prometheus import PrometheusClient

DEFAULT_HTTP_TIMEOUT = 5.0


def _shown(url: str) -> str:
    """``url`` quoted for an error message, its passwords as ``***``: a broken URL is not
    yet a known secret, so only its shape tells where the password is."""
    return repr(mask_urls(url))


def _check_url(url: str, schemes: tuple[str, ...]) -> None:
    """``ValueError`` unless ``url`` has one of ``schemes``, a host (a socket path for
    ``unix://``), a port that parses and, for Redis, a numeric database."""
    expected = ("an " if schemes[0].startswith("h") else "a ") + " or ".join(s + "://" for s in schemes)
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:  # an unclosed "[" of an IPv6 address, ...
        raise ValueError(f"cannot parse the URL {_shown(url)}: {exc}") from None
    if parts.scheme not in schemes:
        raise ValueError(f"expected {expected} URL, got {_shown(url)}")
    query = urllib.parse.parse_qs(parts.query)
    if parts.scheme == "unix":
        if not parts.path.strip("/"):
            raise ValueError(f"expected the socket's path (unix:///path/to/redis.sock), got {_shown(url)}")
    elif not parts.hostname and not parts.scheme.startswith("postgres"):  # libpq: no host is the local socket
        raise ValueError(f"expected a host name ({parts.scheme}://host:port/...), got {_shown(url)}")
    try:
        port = parts.port
    except ValueError:  # not a number, or out of 0-65535
        port = 0
    if port == 0:
        raise ValueError(f"expected a port from 1 to 65535, got {_shown(url)}")
    if parts.scheme in ("redis", "rediss", "unix"):
        db = query.get("db", [parts.path.strip("/") if parts.scheme != "unix" else ""])[0]
        if db and not db.isdigit():
            raise ValueError(f"expected a database number (redis://host:6379/0), got {_shown(url)}")


def _as_urls(value: Any) -> list[str]:
    if isinstance(value, str):
        urls = [u.strip() for u in value.split(",") if u.strip()]
    elif isinstance(value, list) and all(isinstance(u, str) for u in value):
        urls = list(value)
    else:
        raise ValueError(f"expected a URL or a list of URLs, got {value!r}")
    for url in urls:
        _check_url(url, ("http", "https"))
    return [u.rstrip("/") for u in urls]


def _as_path(value: Any) -> str:
    text = as_str(value)
    if not text.startswith("/"):
        raise ValueError(f"expected a path starting with '/', got {text!r}")
    return text


def _as_url(*schemes: str) -> Any:
    def check(value: Any) -> str:
        text = as_str(value)
        _check_url(text, schemes)
        return text

    return check


def _as_profile(value: Any) -> str:
    """A profile's name. The profiles' tables are imported when one is named or a target
    needs one, not at every start (4 ms of a run's start-up)."""
    from fraiseql_checks.targets.profiles import PROFILES

    return one_of(*PROFILES)(value)


#: The ``db`` pool's defaults (``Database`` uses them too).
POOL_SIZE = 4
CONNECT_TIMEOUT = 5.0
APPLICATION_NAME = "fraiseql-checks"
FRAISEQL_SETTINGS = [
    Setting("url", _as_urls, help="base URL of the FraiseQL server, or a list of replicas", env="FRAISEQL_URL"),
    Setting("profile", _as_profile, help="fraiseql-v2 (default) or fraiseql-v1", env="FRAISEQL_PROFILE"),
    Setting("health_path", _as_path, help="path of the health endpoint (profile default)"),
    Setting("readiness_path", _as_path, help="path of the readiness endpoint (profile default)"),
    Setting("metrics_path", _as_path, help="path of the Prometheus endpoint (profile default)"),
    Setting("graphql_path", _as_path, help="path of the GraphQL endpoint (profile default)"),
    Setting("metrics_token", as_str, help="bearer token of /metrics", env="FRAISEQL_METRICS_TOKEN", secret=True),
    Setting("admin_token", as_str, help="bearer token of the admin API", env="FRAISEQL_ADMIN_TOKEN", secret=True),
    Setting("smoke_query", as_str, "{ __typename }", "the GraphQL query of the smoke check"),
]
DATABASE_SETTINGS = [
    # URLs whose passwords are secrets (masked as any URL password), not the whole URL
    Setting("dsn", _as_url("postgresql", "postgres"), help="PostgreSQL DSN", env="DATABASE_URL"),
    Setting("pool_size", as_positive_int, POOL_SIZE, "connections the `db` pool opens at most"),
    Setting("connect_timeout", as_duration, CONNECT_TIMEOUT, "time limit to open a connection"),
    Setting("application_name", as_str, APPLICATION_NAME, "application_name of the tool's sessions"),
]
CACHE_SETTINGS = [
    Setting("url", _as_url("redis", "rediss", "unix"), help="Redis URL", env="REDIS_URL"),
    Setting("timeout", as_duration, 5.0, "time limit to connect and per command"),
]
PROMETHEUS_SETTINGS = [
    Setting("url", _as_url("http", "https"), help="Prometheus base URL", env="PROMETHEUS_URL"),
    Setting("token", as_str, help="bearer token, if Prometheus sits behind one", secret=True),
]
_SECTIONS = {
    "fraiseql": FRAISEQL_SETTINGS,
    "database": DATABASE_SETTINGS,
    "cache": CACHE_SETTINGS,
    "prometheus": PROMETHEUS_SETTINGS,
}


@dataclasses.dataclass(frozen=True)
class FraiseQLTarget:
    urls: tuple[str, ...]
    profile: Profile
    health_path: str
    readiness_path: str
    metrics_path: str
    graphql_path: str
    metrics_token: str | None
    admin_token: str | None
    smoke_query: str

    @property
    def url(self) -> str:
        return self.urls[0]


@dataclasses.dataclass(frozen=True)
class Targets:
    """The resolved targets of a run; ``None`` where nothing is configured."""

    #: The configured profile's name; ``None``: the default (``profile`` is its ``Profile``).
    profile_name: str | None
    fraiseql: FraiseQLTarget | None
    database_dsn: str | None
    cache_url: str | None
    prometheus_url: str | None
    prometheus_token: str | None
    require: bool
    database_pool_size: int
    database_connect_timeout: float
    database_application_name: str
    cache_timeout: float

    @property
    def profile(self) -> Profile:
        return _profile(self.profile_name)


def _profile(name: str | None) -> Profile:
    """The profile of that name, or the default one (its tables imported here, not at every start)."""
    from fraiseql_checks.targets.profiles import DEFAULT_PROFILE, PROFILES

    return PROFILES[name or DEFAULT_PROFILE]


_TARGETS = StashKey[Targets]("targets")


@hookimpl
def fraiseql_addoption(parser: Parser) -> None:
    parser.addoption(
        "--require-targets",
        action="store_true",
        help="a check whose target is not configured is an error instead of a skip (for CI)",
        group="targets",
    )
    for name, settings in _SECTIONS.items():
        parser.addsetting(Setting(name, section(settings), {}, f"the {name} target"))
    parser.addsetting(
        Setting(
            "http_timeout",
            as_duration,
            DEFAULT_HTTP_TIMEOUT,
            "time limit of each HTTP request the fixtures send (connect, read, write)",
        )
    )


def _resolve(config: Config, name: str) -> dict[str, Any]:
    """A target's table from the file, with the environment's values on top."""
    return resolve_section(config, name, _SECTIONS[name])


def targets_of(config: Config) -> Targets:
    """The targets of this run (resolved once; ``UsageError`` when a value is wrong)."""
    cached = config.stash.get(_TARGETS)
    if cached is not None:
        return cached
    fraiseql = _resolve(config, "fraiseql")
    target = None
    if fraiseql.get("url"):
        profile = _profile(fraiseql.get("profile"))
        target = FraiseQLTarget(
            urls=tuple(fraiseql["url"]),
            profile=profile,
            health_path=fraiseql.get("health_path") or profile.health_path,
            readiness_path=fraiseql.get("readiness_path") or profile.readiness_path,
            metrics_path=fraiseql.get("metrics_path") or profile.metrics_path,
            graphql_path=fraiseql.get("graphql_path") or profile.graphql_path,
            metrics_token=fraiseql.get("metrics_token"),
            admin_token=fraiseql.get("admin_token"),
            smoke_query=fraiseql["smoke_query"],
        )
    prometheus = _resolve(config, "prometheus")
    database = _resolve(config, "database")
    cache = _resolve(config, "cache")
    targets = Targets(
        profile_name=fraiseql.get("profile"),
        fraiseql=target,
        database_dsn=database.get("dsn"),
        cache_url=cache.get("url"),
        prometheus_url=(prometheus.get("url") or "").rstrip("/") or None,
        prometheus_token=prometheus.get("token"),
        require=bool(config.getoption("require_targets")),
        database_pool_size=database["pool_size"],
        database_connect_timeout=database["connect_timeout"],
        database_application_name=database["application_name"],
        cache_timeout=cache["timeout"],
    )
    config.stash[_TARGETS] = targets
    return targets


@hookimpl
def fraiseql_configure(config: Config) -> None:
    targets_of(config)  # wrong values fail here, before anything runs


def not_configured(config: Config, what: str, setting: str, env: str) -> NoReturn:
    """Skip the running check (or fail it, with ``--require-targets``) for a missing target."""
    message = f"{what} is not configured: set {env} or `{setting}` in the config"
    if targets_of(config).require:
        raise TargetNotConfigured(message + " (--require-targets)")
    raise Skipped(message)


# ---- fixtures (this module is registered as the "targets" plugin) --------------------


@fixture(scope="session")
async def http(config: Config) -> AsyncIterator[HTTPClient]:
    """An ``httpx.AsyncClient`` with timeouts (``http_timeout``, default 5s) that sends the
    running check's W3C ``traceparent`` on every request."""
    # Importing httpx takes several hundredths of a second: on a thread, so that the
    # checks running beside the first one are not held up.
    import asyncio

    async with await asyncio.to_thread(_http_client, config) as client:
        yield client


def _http_client(config: Config) -> HTTPClient:
    from fraiseql_checks.targets.http import make_client

    return make_client(config)


async def _fraiseql_client(config: Config, http: HTTPClient) -> FraiseQLClient:
    from fraiseql_checks.targets.fraiseql import FraiseQLClient

    target = targets_of(config).fraiseql
    if target is None:
        not_configured(config, "FraiseQL", "fraiseql.url", "FRAISEQL_URL")
    return FraiseQLClient(config, target, http)


@fixture(scope="session", name="fraiseql", target="fraiseql")
async def target_fraiseql(config: Config, http: HTTPClient) -> FraiseQLClient:
    """The FraiseQL server (``FRAISEQL_URL``): ``health()``, ``readiness()``, ``metrics()``,
    ``version``, ``schema_hash``, ``replicas``."""
    return await _fraiseql_client(config, http)


@fixture(scope="session", target="fraiseql")
async def graphql(config: Config, http: HTTPClient) -> GraphQLClient:
    """``graphql.execute(query, variables=None)`` against the FraiseQL server's GraphQL endpoint."""
    return (await _fraiseql_client(config, http)).graphql


@fixture(scope="session", target="database")
async def db(config: Config) -> AsyncIterator[Database]:
    """The PostgreSQL database (``DATABASE_URL``) as a traced asyncpg pool: ``fetch``,
    ``fetchrow``, ``fetchval``, ``execute``, ``acquire()``."""
    from fraiseql_checks.targets.database import Database

    targets = targets_of(config)
    if targets.database_dsn is None:
        not_configured(config, "the database", "database.dsn", "DATABASE_URL")
    database = Database(
        targets.database_dsn,
        pool_size=targets.database_pool_size,
        connect_timeout=targets.database_connect_timeout,
        application_name=targets.database_application_name,
    )
    try:
        yield database
    finally:
        await database.close()


@fixture(scope="session", target="cache")
async def cache(config: Config) -> AsyncIterator[Cache]:
    """The Redis cache (``REDIS_URL``) as a ``redis.asyncio`` client (strings decoded)."""
    from fraiseql_checks.targets.cache import connect

    targets = targets_of(config)
    if targets.cache_url is None:
        not_configured(config, "the cache", "cache.url", "REDIS_URL")
    client = connect(targets.cache_url, targets.cache_timeout)
    try:
        yield client
    finally:
        await client.aclose()


@fixture(scope="session", target="prometheus")
async def prom(config: Config, http: HTTPClient) -> PrometheusClient:
    """Prometheus (``PROMETHEUS_URL``): ``query()``, ``query_range()``, ``series_names()``."""
    from fraiseql_checks.targets.prometheus import PrometheusClient

    targets = targets_of(config)
    if targets.prometheus_url is None:
        not_configured(config, "Prometheus", "prometheus.url", "PROMETHEUS_URL")
    return PrometheusClient(http, targets.prometheus_url, targets.prometheus_token)
