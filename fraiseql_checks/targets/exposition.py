"""A parsed Prometheus ``/metrics`` page: its metric families and the series names they expose.

Parsing is prometheus_client's text parser, with one correction: it renames a
counter's samples to end in ``_total`` even when the server wrote them without the
suffix (FraiseQL v2's ``fraiseql_cache_hits``), so the names a query can select are
taken from the sample lines as written. A family that is declared but has no
sample yet (a labelled counter nobody incremented) still counts as exposed: its
``# TYPE`` line says which series names it will have.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from fraiseql_checks.metrictypes import TOTAL, series_names


def _written_names(text: str) -> tuple[set[str], dict[str, str]]:
    """The sample names as written, and the declared ``# TYPE`` names with their types."""
    samples: set[str] = set()
    declared: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "TYPE":
                declared[parts[2]] = parts[3]
            continue
        end = len(line)
        for stop in ("{", " ", "\t"):
            index = line.find(stop)
            if index != -1:
                end = min(end, index)
        samples.add(line[:end])
    return samples, declared


def _as_written(sample: Sample, written: set[str]) -> Sample:
    """Undo the parser's ``_total`` on a counter sample the server wrote without it."""
    bare = sample.name.removesuffix(TOTAL)
    if sample.name not in written and bare != sample.name and bare in written:
        return sample._replace(name=bare)
    return sample


class ExpositionError(ValueError):
    """The text is not valid Prometheus exposition format."""


@dataclasses.dataclass(frozen=True)
class Family:
    """One metric family: name, type, help and its samples (named as the server wrote them)."""

    name: str
    type: str
    help: str
    samples: tuple[Sample, ...]


@dataclasses.dataclass(frozen=True)
class Exposition:
    """What one ``/metrics`` answer exposes."""

    families: Mapping[str, Family]
    #: Every series name a query may select on this target.
    series_names: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> Exposition:
        """Parse exposition text; ``ExpositionError`` with the parser's message when it is not valid."""
        written, declared = _written_names(text)
        families: dict[str, Family] = {}
        try:
            for metric in text_string_to_metric_families(text):
                samples = tuple(_as_written(sample, written) for sample in metric.samples)
                families[metric.name] = Family(metric.name, metric.type, metric.documentation, samples)
        except (ValueError, IndexError, TypeError) as exc:
            raise ExpositionError(f"not Prometheus exposition text: {exc}") from None
        names = set(written)
        for name, kind in declared.items():
            if not any(sample == name or sample.startswith(name + "_") for sample in written):
                names.update(series_names(name, kind))
        return cls(families, frozenset(names))

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
