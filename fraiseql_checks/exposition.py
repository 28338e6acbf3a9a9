"""A parsed Prometheus ``/metrics`` page: its metric families and the series names they expose.

Parsing is prometheus_client's text parser. A family that is declared but has no
sample yet (a labelled counter nobody incremented) still counts as exposed: its
``# TYPE`` line says which series names it will have.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

# The series names each metric type shows, from its family name (the parser drops
# ``_total`` from counter family names).
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created", ""),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


class ExpositionError(ValueError):
    """The text is not valid Prometheus exposition format."""


@dataclasses.dataclass(frozen=True)
class Family:
    """One metric family: name, type, help and its samples."""

    name: str
    type: str
    help: str
    samples: tuple[Sample, ...]

    @property
    def series_names(self) -> frozenset[str]:
        declared = {self.name + suffix for suffix in _SUFFIXES.get(self.type, ("",))}
        return frozenset(declared | {sample.name for sample in self.samples})


@dataclasses.dataclass(frozen=True)
class Exposition:
    """What one ``/metrics`` answer exposes."""

    families: Mapping[str, Family]

    @classmethod
    def parse(cls, text: str) -> Exposition:
        """Parse exposition text; ``ExpositionError`` with the parser's message when it is not valid."""
        families: dict[str, Family] = {}
        try:
            for metric in text_string_to_metric_families(text):
                families[metric.name] = Family(metric.name, metric.type, metric.documentation, tuple(metric.samples))
        except (ValueError, IndexError, TypeError) as exc:
            raise ExpositionError(f"not Prometheus exposition text: {exc}") from None
        return cls(families)

    @property
    def series_names(self) -> frozenset[str]:
        """Every series name a query may select on this target."""
        return frozenset(name for family in self.families.values() for name in family.series_names)

    def samples(self, name: str) -> Iterator[Sample]:
        """The samples whose series name is ``name`` (e.g. ``x_total`` or ``x_bucket``)."""
        for family in self.families.values():
            for sample in family.samples:
                if sample.name == name:
                    yield sample

    def value(self, name: str, **labels: str) -> float | None:
        """The value of the first sample named ``name`` whose labels include ``labels``."""
        for sample in self.samples(name):
            if all(sample.labels.get(key) == value for key, value in labels.items()):
                return float(sample.value)
        return None

    def __contains__(self, name: object) -> bool:
        return name in self.series_names

    def __len__(self) -> int:
        return len(self.families)
