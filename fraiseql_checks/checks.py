"""A collected check: one function, or one parameter set of a parametrized function."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from fraiseql_checks.spec import CheckSpec, describe

if TYPE_CHECKING:
    from _pytest.mark.structures import Mark


@dataclasses.dataclass(eq=False, kw_only=True)
class CheckInfo:
    """What is known of a collected check without its code: its id and effective metadata.

    Plain data that pickles: watch mode's worker processes send these to the watcher,
    which schedules, exports and notifies from them without importing check files.
    """

    id: str  # ``path::name[param-id]`` as pytest writes node ids
    name: str  # ``name[param-id]``
    function_name: str
    path: Path
    spec: CheckSpec
    is_async: bool = False
    #: Fixture names the function requests (its arguments that are not parameters).
    argnames: tuple[str, ...] = ()
    param_id: str | None = None
    lineno: int = 0
    # Effective metadata: the spec's own values, else the configured defaults.
    severity: str = "warning"
    timeout: float = 10.0
    interval: float = 60.0
    #: The docstring's first paragraph (filled when the info leaves its ``Check``).
    doc: str = ""
    #: The targets it depends on (filled when the info leaves its ``Check``): its
    #: fixtures' and its declared ones. While one is down, its failure is blamed on it.
    targets: tuple[str, ...] = ()

    @property
    def relpath(self) -> str:
        return self.id.split("::", 1)[0]

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.spec.labels)

    @property
    def tags(self) -> tuple[str, ...]:
        return self.spec.tags

    @property
    def runbook(self) -> str | None:
        return self.spec.runbook

    @property
    def suite(self) -> str:
        """The check's suite: a ``suite`` label, else the directory holding its file."""
        return self.spec.labels.get("suite") or self.path.parent.name

    @property
    def description(self) -> str:
        return self.spec.description or self._doc()

    def _doc(self) -> str:
        return self.doc

    def metadata(self) -> dict[str, Any]:
        """The effective metadata, as ``--collect-only`` and reports show it."""
        return {
            "severity": self.severity,
            "interval": self.interval,
            "timeout": self.timeout,
            "labels": self.labels,
            "tags": list(self.tags),
            "runbook": self.runbook,
            "owner": self.spec.owner,
            "description": self.description,
            "slo": self.spec.slo,
            "suite": self.suite,
        }


_INFO_FIELDS = tuple(field.name for field in dataclasses.fields(CheckInfo))


@dataclasses.dataclass(eq=False, kw_only=True)
class Check(CheckInfo):
    """A check as the runner sees it: its metadata, and the function and module to run."""

    module: ModuleType
    func: Callable[..., Any]
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    marks: list[Mark] = dataclasses.field(default_factory=list)

    def _doc(self) -> str:
        return describe(self.func, None)

    def info(self, targets: tuple[str, ...] = ()) -> CheckInfo:
        """The check's metadata alone, as plain data (panel hints reduced to JSON values),
        with the ``targets`` it depends on (``FixtureRegistry.targets_of``)."""
        values = {name: getattr(self, name) for name in _INFO_FIELDS}
        values["doc"] = self._doc()
        values["targets"] = targets
        spec = self.spec
        if spec.panel:
            panel = json.loads(json.dumps(dict(spec.panel), default=repr))
            values["spec"] = dataclasses.replace(spec, panel=panel)
        return CheckInfo(**values)

    @property
    def mark_names(self) -> set[str]:
        """What ``-m`` matches: marks, tags and the severity."""
        return {mark.name for mark in self.marks} | set(self.tags) | {self.severity}

    @property
    def keywords(self) -> set[str]:
        """What ``-k`` matches against, as pytest does: the name, its file and folders, marks."""
        names = {self.name, self.function_name, self.path.name}
        names.update(self.relpath.split("/")[:-1])
        names.update(self.mark_names)
        return names

    def skip_reason(self) -> str | None:
        """The reason from a ``skip`` or true ``skipif`` mark, if any."""
        for mark in self.marks:
            if mark.name == "skip":
                return str(mark.kwargs.get("reason", mark.args[0] if mark.args else "unconditional skip"))
            if mark.name == "skipif":
                if mark.args:
                    conditions: tuple[Any, ...] = mark.args
                elif "condition" in mark.kwargs:
                    conditions = (mark.kwargs["condition"],)
                else:  # pytest: skipif without a condition skips
                    return str(mark.kwargs.get("reason", "unconditional skip"))
                for condition in conditions:
                    if self._evaluate(condition):
                        reason = mark.kwargs.get("reason")
                        if reason is None:
                            if isinstance(condition, str):
                                reason = f"condition: {condition}"
                            else:
                                raise ValueError("skipif with a boolean condition needs reason=")
                        return str(reason)
        return None

    def _evaluate(self, condition: Any) -> bool:
        if not isinstance(condition, str):
            return bool(condition)
        import platform  # for the conditions only: not imported at every start

        namespace = {"os": os, "sys": sys, "platform": platform, **self.module.__dict__}
        try:
            return bool(eval(condition, namespace))  # pytest evaluates string conditions the same way
        except Exception as exc:
            raise ValueError(f"skipif condition {condition!r} raised {type(exc).__name__}: {exc}") from None
