"""Names a module gives but imports on first use (PEP 562), in one place.

The package's public names, the ``audit`` package's and the API's Starlette types are
imported when a check, a plugin or a route first asks, not at every start. Each
of those modules says where its names live and takes its ``__getattr__`` from here.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(module: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """The ``__getattr__`` of ``module``: each name of ``homes`` imported from the module
    it maps to when first asked, then kept as a plain attribute of ``module``."""
    namespace = sys.modules[module].__dict__

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        namespace[name] = value
        return value

    return __getattr__
