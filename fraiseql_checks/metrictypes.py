"""Metric types: the kinds of a Prometheus metric family, the sample names each kind shows, the family type.

A family is what a ``# TYPE`` line declares: a name and a kind. Its samples are
named after it, with a suffix that depends on the kind: a histogram ``x`` shows
``x_bucket``, ``x_sum`` and ``x_count``, a counter or a gauge one series named
``x``. The suffixes are spelt here and nowhere else; the exporter, the profiles of
FraiseQL's series, the parsed ``/metrics`` pages, the dashboards and the SLO rules
ask this module for them.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from typing import TypeVar


class Kind(enum.StrEnum):
    """A metric family's type, as the exposition format's ``# TYPE`` line writes it."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"
    SUMMARY = "summary"
    #: OpenMetrics' histogram of a gauge: ``_gsum`` and ``_gcount`` instead of ``_sum`` and ``_count``.
    GAUGEHISTOGRAM = "gaugehistogram"


#: The suffixes of each kind's sample names (``""``: the family's own name). A kind
#: left out shows one series named as the family.
SUFFIXES: Mapping[str, tuple[str, ...]] = {
    Kind.HISTOGRAM: ("_bucket", "_sum", "_count"),
    Kind.GAUGEHISTOGRAM: ("_bucket", "_gsum", "_gcount"),
    Kind.SUMMARY: ("", "_sum", "_count"),
}
_ONE_SERIES = ("",)
#: The suffix of a counter's name by Prometheus' conventions (OpenMetrics: of its sample).
TOTAL = "_total"
#: The parts of a histogram a query or a role placeholder names (``{{query_latency.bucket}}``).
HISTOGRAM_PARTS: tuple[str, ...] = tuple(suffix.removeprefix("_") for suffix in SUFFIXES[Kind.HISTOGRAM])
#: A valid metric name (the exposition format's).
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def suffixes(kind: str) -> tuple[str, ...]:
    """The suffixes of the sample names a family of ``kind`` shows (``("",)`` for one series)."""
    return SUFFIXES.get(kind, _ONE_SERIES)


def series_names(name: str, kind: str) -> tuple[str, ...]:
    """The sample names a family ``name`` of ``kind`` shows: a histogram's three, otherwise its name."""
    return tuple(name + suffix for suffix in suffixes(kind))


def sample_name(name: str, kind: str, part: str | None = None) -> str:
    """The sample of ``name`` called ``part``: a histogram's ``bucket`` is ``name_bucket``.

    ``part`` is left out for the family's own series; ``ValueError`` when the kind
    has no such series (a counter's ``bucket``, a histogram without a part).
    """
    parts = {suffix.removeprefix("_") or None: name + suffix for suffix in suffixes(kind)}
    try:
        return parts[part]
    except KeyError:
        pass
    if part is None:
        named = ", ".join(p for p in parts if p is not None)
        raise ValueError(f"{name} is a {kind}: name one of its series ({named})") from None
    raise ValueError(f"{name} is a {kind}, it has no {part!r} series") from None


def family_name(sample: str, kind: str, part: str) -> str:
    """The family whose ``part`` series ``sample`` is (``x`` for a histogram's ``x_bucket``);
    ``sample`` itself when it is not named so."""
    return sample.removesuffix(sample_name("", kind, part))


class Family:
    """A metric family, whoever defines it: a name, a kind, label names, and the sample
    names that follow from them.

    The base of ``metrics.Metric`` (the series this tool exports) and
    ``profiles.Metric`` (the series a FraiseQL server exports): each is a frozen
    dataclass declaring the three fields in the order its own definitions write them.
    """

    __slots__ = ()

    name: str
    kind: Kind
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if not NAME.fullmatch(self.name):
            raise ValueError(f"{self.name!r} is not a valid metric name")
        if not isinstance(self.kind, Kind):
            raise ValueError(f"metric {self.name!r}: {self.kind!r} is not a metric type")
        if "le" in self.labels and self.kind in (Kind.HISTOGRAM, Kind.GAUGEHISTOGRAM):
            raise ValueError(f"histogram {self.name!r} cannot have a label 'le': its buckets have it")

    @property
    def series_names(self) -> tuple[str, ...]:
        """The sample names it shows on ``/metrics`` (a histogram has three)."""
        return series_names(self.name, self.kind)

    def sample(self, part: str | None = None) -> str:
        """The sample name of ``part`` (``bucket``, ``sum``, ``count``), or of the family's one series."""
        return sample_name(self.name, self.kind, part)


F = TypeVar("F", bound=Family)


def family_of(name: str, families: Iterable[F]) -> F | None:
    """The family among ``families`` called ``name``, or showing a sample called so (``x_count``
    is histogram ``x``'s); ``None`` if there is none."""
    for family in families:
        if name == family.name or name in family.series_names:
            return family
    return None
