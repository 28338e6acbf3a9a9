"""Re-collecting the checks of a running watcher (SIGHUP), in each worker process.

Every file is imported again. A file that no longer imports keeps its previous
version running (its checks, its module's fixtures, and for a broken conftest the
conftest's fixtures and hooks) and is reported as a collection error. Plugin
fixtures keep their definitions, so their session values (pools, clients)
survive the reload; values of fixtures whose definition was replaced are handed
back to be torn down.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraiseql_checks.core.collect import CONFTEST, CollectError, Collector
from fraiseql_checks.core.fixtures import FixtureDef, FixtureRegistry

if TYPE_CHECKING:
    from fraiseql_checks.checks import Check
    from fraiseql_checks.core.session import Session


@dataclasses.dataclass
class Recollection:
    """The outcome of a reload."""

    #: What runs from now on: the new checks and the kept old ones.
    checks: list[Check]
    errors: list[CollectError]
    #: Ids of old checks kept because their file (or conftest) no longer collects.
    kept: set[str]
    #: Check modules imported anew: their old module-scoped values are stale.
    reimported: set[Path]
    #: Old definitions no longer in use: their session values are stale.
    retired: list[FixtureDef]


def _conftest_plugins(session: Session) -> dict[str, Any]:
    return {
        name: plugin
        for name, plugin in session.config.pluginmanager.list_name_plugin()
        if name and name.endswith(CONFTEST) and plugin is not None
    }


def recollect(
    session: Session,
    previous: list[Check],
    *,
    on_import: Callable[[str], None] | None = None,
    skip: dict[str, str] | None = None,
) -> Recollection:
    """Collect again into a fresh fixture registry and a fresh collector, then
    put back what the files that broke had. Raises what collection raises (a
    ``UsageError`` when a path is gone); the session is left as it was then."""
    config = session.config
    pm = config.pluginmanager
    old_registry, old_collector = session.fixtures, session.collector
    old_conftests = _conftest_plugins(session)
    for name in old_conftests:
        pm.unregister(name=name)
    registry = FixtureRegistry()
    for definition in old_registry.definitions():
        if definition.base is None:  # a plugin's: the same function, the same definition
            registry.add(definition)
    session.fixtures = registry
    session.collector = Collector(session)
    session.collector.on_import = on_import
    session.collector.skip = dict(skip or {})
    try:
        checks, errors = session.collector.collect(session.args())
        config.hook.fraiseql_collection_modifyitems(session=session, config=config, checks=checks)
    except BaseException:
        for name in _conftest_plugins(session):
            pm.unregister(name=name)
        for name, plugin in old_conftests.items():
            pm.register(plugin, name=name)
        session.fixtures, session.collector = old_registry, old_collector
        raise
    broken_files = {config.rootdir / error.id for error in errors if "::" not in error.id}
    broken_ids = {error.id for error in errors if "::" in error.id}
    broken_dirs = {path.parent for path in broken_files if path.name == CONFTEST}
    new_ids = {check.id for check in checks}

    def under_broken_conftest(path: Path) -> bool:
        return any(directory == path.parent or directory in path.parents for directory in broken_dirs)

    kept = [
        check
        for check in previous
        if check.id not in new_ids
        and (check.id in broken_ids or check.path in broken_files or under_broken_conftest(check.path))
    ]
    kept_modules = {check.path for check in kept if check.path in broken_files or under_broken_conftest(check.path)}
    for definition in old_registry.definitions():
        if definition.base is not None and (definition.base in kept_modules or definition.base in broken_dirs):
            registry.add(definition)
    for name, plugin in old_conftests.items():
        if Path(name).parent in broken_dirs and pm.get_plugin(name) is None:
            pm.register(plugin, name=name)
    in_use = set(registry.definitions())
    return Recollection(
        checks=checks + kept,
        errors=errors,
        kept={check.id for check in kept},
        reimported={check.path for check in checks},
        retired=[definition for definition in old_registry.definitions() if definition not in in_use],
    )
