"""What ``fraiseql-check init`` learns from a FraiseQL server before it writes the config.

The profile is told from the server's answers compared with the facts each profile
already holds (``targets/profiles.py``): the series only that version's ``/metrics``
shows, its readiness path, whether its ``/metrics`` needs a token. Nothing here
names a version: a third profile is told apart the same way once it is declared.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from typing import Any

import httpx

from fraiseql_checks.errors import TargetError
from fraiseql_checks.targets.exposition import Exposition, ExpositionError
from fraiseql_checks.targets.http import HTTPClient, json_body, snippet, status_error
from fraiseql_checks.targets.profiles import DEFAULT_PROFILE, PROFILES, Profile

#: A wizard waits for a person: a server that does not answer within this is reported.
PROBE_TIMEOUT = 5.0


@dataclasses.dataclass(frozen=True)
class Probe:
    """What a FraiseQL URL answered: its health, the profile it looks like, and why."""

    url: str
    #: ``None`` when the server could not be asked at all (``problem`` says why).
    health: Mapping[str, Any] | None
    health_code: int
    profile: str
    #: How the profile was chosen, in a few words ("its /metrics shows 61 series only fraiseql-v2 has").
    evidence: str
    #: Whether ``/metrics`` answered (with the token, where one is needed).
    metrics_ok: bool
    #: A one-line problem worth telling the user (unreachable, 401 on /metrics...), or "".
    problem: str = ""

    @property
    def reachable(self) -> bool:
        return self.health is not None

    def summary(self) -> str:
        """One line for the terminal: the server's state and the profile chosen."""
        if not self.reachable:
            what = f"{self.url} is not FraiseQL" if self.health_code else f"cannot reach {self.url}"
            return f"{what}: {self.problem}; profile {self.profile} ({self.evidence})"
        assert self.health is not None
        status = str(self.health.get("status", "no status"))
        version = self.health.get("version")
        server = f"FraiseQL {version}" if version else "FraiseQL"
        line = f"{server} at {self.url}: {status} (HTTP {self.health_code}); profile {self.profile} ({self.evidence})"
        return line + (f"; {self.problem}" if self.problem else "")


def _unique_series(profile: Profile) -> frozenset[str]:
    """The series a server of ``profile`` shows and no other profile has."""
    others: set[str] = set()
    for other in PROFILES.values():
        if other.name != profile.name:
            others |= other.series_names()
    return profile.required_series_names() - others


def profile_from_series(names: frozenset[str]) -> tuple[str, int] | None:
    """The profile most of whose own series ``names`` holds, with how many; ``None`` if none."""
    scores = {name: len(names & _unique_series(profile)) for name, profile in PROFILES.items()}
    best = max(scores, key=lambda name: scores[name])
    return (best, scores[best]) if scores[best] else None


async def _get(http: HTTPClient, url: str, token: str | None = None) -> tuple[httpx.Response, Any]:
    """The answer to a GET and its parsed JSON (``None`` if not JSON); ``TargetError`` when nothing answers."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await http.get(url, headers=headers)
    try:
        body = response.json()
    except ValueError:
        body = None
    return response, body


async def probe_async(url: str, token: str | None, http: HTTPClient) -> Probe:
    """Ask ``url`` for its health, its ``/metrics`` and each profile's readiness path."""
    url = url.rstrip("/")
    default = PROFILES[DEFAULT_PROFILE]
    try:
        response, health = await _get(http, url + default.health_path)
    except TargetError as exc:
        return Probe(url, None, 0, DEFAULT_PROFILE, "the default", False, problem=_after_url(str(exc)))
    code = response.status_code
    if not isinstance(health, dict) or "status" not in health:
        problem = str(status_error(response)) if code >= 400 and code != 503 else _not_health(response)
        return Probe(url, None, code, DEFAULT_PROFILE, "the default", False, problem=_after_url(problem))

    problem = ""
    metrics_ok = False
    # /metrics: the strongest evidence, the series only one profile has.
    metrics_paths = sorted({p.metrics_path for p in PROFILES.values()})
    needs_token: set[str] = set()
    for path in metrics_paths:
        answer, _ = await _get(http, url + path, token)
        code_m, text = answer.status_code, answer.text
        if code_m in (401, 403):
            needs_token |= {p.name for p in PROFILES.values() if p.metrics_path == path and p.metrics_need_token}
            problem = (
                f"{path} refused the token (HTTP {code_m}): check FRAISEQL_METRICS_TOKEN"
                if token
                else f"{path} needs a token: set FRAISEQL_METRICS_TOKEN"
            )
            continue
        if code_m >= 400:
            continue
        try:
            names = Exposition.parse(text).series_names
        except ExpositionError:
            continue
        metrics_ok = True
        found = profile_from_series(names)
        if found is not None:
            return Probe(url, health, code, found[0], f"its {path} shows {found[1]} series only it has", True)

    # Readiness: the profile whose own readiness path answers with a status.
    answered = []
    for profile in PROFILES.values():
        answer, body = await _get(http, url + profile.readiness_path)
        if isinstance(body, dict) and "status" in body and answer.status_code in (200, 503):
            answered.append(profile.name)
    candidates = [name for name in answered if not needs_token or name in needs_token]
    if len(candidates) == 1:
        path = PROFILES[candidates[0]].readiness_path
        return Probe(url, health, code, candidates[0], f"it answers {path}", metrics_ok, problem)
    if len(needs_token) == 1:
        name = next(iter(needs_token))
        return Probe(url, health, code, name, "its /metrics asks for a token", metrics_ok, problem)
    return Probe(
        url, health, code, DEFAULT_PROFILE, "the default: its answers fit no profile alone", metrics_ok, problem
    )


def _after_url(message: str) -> str:
    """A ``TargetError`` line without its leading ``GET http://...:`` (the summary names the URL)."""
    head, sep, tail = message.partition(": ")
    return tail if sep and head.startswith(("GET ", "POST ")) else message


def _not_health(response: httpx.Response) -> str:
    try:
        json_body(response)
    except TargetError as exc:
        return str(exc)
    return f"GET {response.request.url}: expected a JSON object with a 'status', got {snippet(response.text)}"


def probe(url: str, token: str | None = None, timeout: float = PROBE_TIMEOUT) -> Probe:
    """``probe_async`` on its own event loop and HTTP client."""

    async def run() -> Probe:
        async with HTTPClient(timeout=timeout) as http:
            return await probe_async(url, token, http)

    return asyncio.run(run())
