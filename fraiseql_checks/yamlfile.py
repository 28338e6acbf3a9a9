"""Reading YAML files: safe, libyaml's speed when PyYAML has it, and a key given twice is an error.

PyYAML keeps the last of two equal keys without a word, so ``timeout: 5s`` further down a
file would silently undo the first; every YAML file the tool reads (its config, SLO files,
rule files) goes through ``load`` or ``load_all`` instead of ``yaml.safe_load``. Errors are
``yaml.YAMLError``; ``problem`` says where and what in one line. Keys that a merge
(``<<: *defaults``) brings in may still be overridden: that is what merging is for.
"""

from __future__ import annotations

from typing import Any

import yaml

_MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(yaml.constructor.ConstructorError):  # type: ignore[misc]
    """A mapping names one key twice."""


def _construct_mapping(loader: Any, node: Any, deep: bool = False) -> Any:
    if isinstance(node, yaml.MappingNode):
        first: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = loader.construct_object(key_node, deep=True)
            try:
                earlier = first.setdefault(key, key_node)
            except TypeError:
                continue  # an unhashable key: PyYAML says so itself
            if earlier is not key_node:
                raise DuplicateKeyError(
                    problem=f"duplicate key {key!r} (first on line {earlier.start_mark.line + 1})",
                    problem_mark=key_node.start_mark,
                )
    return yaml.constructor.SafeConstructor.construct_mapping(loader, node, deep=deep)


#: ``CSafeLoader`` parses in C; constructing (where the keys are checked) is Python either way.
_BASE: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Loader: Any = type("Loader", (_BASE,), {"construct_mapping": _construct_mapping})


def load(text: str) -> Any:
    """The one document in ``text`` (``None`` if empty)."""
    return yaml.load(text, Loader=Loader)


def load_all(text: str) -> list[Any]:
    """Every document in ``text`` (a ``---`` separates them)."""
    return list(yaml.load_all(text, Loader=Loader))


def problem(exc: Exception) -> str:
    """Where and what a YAML error is, in one line: `` (line 3, column 5): <problem>``."""
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    text = getattr(exc, "problem", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
    return f"{where}: {text}"
