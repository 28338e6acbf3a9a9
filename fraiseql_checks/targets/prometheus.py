"""The ``prom`` fixture: Prometheus' HTTP API on httpx, answers as typed vectors, scalars and matrices.

``await prom.query("up")`` returns a ``Vector`` (or ``Scalar``, ``Matrix``,
``String``, by the expression's type); ``await prom.query_range(expr, start, end,
step)`` returns a ``Matrix``. An expression Prometheus rejects raises
``PrometheusError`` carrying its ``errorType`` and ``error``.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Iterator, Mapping
from typing import Any

from fraiseql_checks.durations import parse_duration
from fraiseql_checks.errors import TargetError
from fraiseql_checks.targets.http import HTTPClient, json_body, status_error


class PrometheusError(TargetError):
    """Prometheus answered ``"status": "error"``: ``error_type`` (``bad_data``, ``timeout``, ...) and ``error``."""

    def __init__(self, error_type: str, error: str, expr: str = "") -> None:
        where = f" for {expr!r}" if expr else ""
        super().__init__(f"Prometheus rejected the query{where}: {error_type}: {error}", target="prometheus")
        self.error_type = error_type
        self.error = error


@dataclasses.dataclass(frozen=True)
class Sample:
    """One value of an instant vector: the series' labels, the value, its timestamp."""

    labels: Mapping[str, str]
    value: float
    timestamp: float


@dataclasses.dataclass(frozen=True)
class Vector:
    """An instant vector: zero or more samples."""

    samples: tuple[Sample, ...]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def value(self) -> float | None:
        """The value of the only sample; ``None`` when empty; ``ValueError`` when there are several."""
        if not self.samples:
            return None
        if len(self.samples) > 1:
            raise ValueError(f"the vector has {len(self.samples)} samples; pick one by its labels")
        return self.samples[0].value


@dataclasses.dataclass(frozen=True)
class Scalar:
    value: float
    timestamp: float


@dataclasses.dataclass(frozen=True)
class String:
    value: str
    timestamp: float


@dataclasses.dataclass(frozen=True)
class Series:
    """One series of a range vector: its labels and ``(timestamp, value)`` points."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]

    @property
    def values(self) -> list[float]:
        return [value for _, value in self.points]


@dataclasses.dataclass(frozen=True)
class Matrix:
    """A range vector: one ``Series`` per label set."""

    series: tuple[Series, ...]

    def __iter__(self) -> Iterator[Series]:
        return iter(self.series)

    def __len__(self) -> int:
        return len(self.series)


QueryResult = Vector | Scalar | Matrix | String


def _number(raw: Any) -> float:
    """Prometheus writes sample values as strings, including ``NaN`` and ``+Inf``."""
    return float(raw) if raw not in ("+Inf", "-Inf") else (math.inf if raw == "+Inf" else -math.inf)


def parse_result(data: Mapping[str, Any]) -> QueryResult:
    """The typed form of the ``data`` object of a query answer."""
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "vector":
        return Vector(
            tuple(Sample(dict(s["metric"]), _number(s["value"][1]), float(s["value"][0])) for s in result or ())
        )
    if kind == "matrix":
        return Matrix(
            tuple(
                Series(dict(s["metric"]), tuple((float(t), _number(v)) for t, v in s.get("values", ())))
                for s in result or ()
            )
        )
    if kind == "scalar" and isinstance(result, list):
        return Scalar(_number(result[1]), float(result[0]))
    if kind == "string" and isinstance(result, list):
        return String(str(result[1]), float(result[0]))
    raise TargetError(f"Prometheus answered an unknown result type {kind!r}", target="prometheus")


def _timestamp(value: float | datetime.datetime | str) -> str:
    if isinstance(value, datetime.datetime):
        return f"{value.timestamp():.3f}"
    return str(value)


def _step(value: float | str | datetime.timedelta) -> str:
    if isinstance(value, datetime.timedelta):
        return f"{value.total_seconds():g}"
    if isinstance(value, str):
        return f"{parse_duration(value):g}"
    return f"{value:g}"


class PrometheusClient:
    """Prometheus' HTTP API (``/api/v1/...``) over the session's ``http`` client."""

    def __init__(self, http: HTTPClient, url: str, token: str | None = None) -> None:
        self.http = http
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def _get(self, path: str, params: Mapping[str, str], expr: str = "") -> Any:
        try:
            response = await self.http.get(self.url + path, params=dict(params), headers=self.headers)
        except TargetError as exc:
            raise exc.retarget("prometheus") from exc.__cause__
        if response.status_code >= 500 and "json" not in response.headers.get("content-type", ""):
            raise status_error(response)
        if response.status_code in (401, 403):
            raise status_error(response, "check the `prometheus.token` setting")
        body = json_body(response)
        if not isinstance(body, dict) or "status" not in body:
            raise status_error(response, "not a Prometheus API answer")
        if body["status"] != "success":
            raise PrometheusError(str(body.get("errorType", "unknown")), str(body.get("error", "")), expr)
        return body.get("data")

    async def query(self, expr: str, time: float | datetime.datetime | None = None) -> QueryResult:
        """An instant query: a ``Vector``, ``Scalar`` or ``String`` (or ``Matrix`` for a range selector)."""
        params = {"query": expr}
        if time is not None:
            params["time"] = _timestamp(time)
        return parse_result(await self._get("/api/v1/query", params, expr))

    async def query_range(
        self,
        expr: str,
        start: float | datetime.datetime,
        end: float | datetime.datetime,
        step: float | str | datetime.timedelta,
    ) -> Matrix:
        """A range query from ``start`` to ``end`` every ``step`` (seconds, or ``"15s"``)."""
        params = {"query": expr, "start": _timestamp(start), "end": _timestamp(end), "step": _step(step)}
        result = parse_result(await self._get("/api/v1/query_range", params, expr))
        assert isinstance(result, Matrix)
        return result

    async def series_names(self) -> frozenset[str]:
        """Every metric name Prometheus holds (``/api/v1/label/__name__/values``)."""
        data = await self._get("/api/v1/label/__name__/values", {})
        return frozenset(str(name) for name in data or ())
