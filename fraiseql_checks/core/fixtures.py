"""Fixtures: declaring them, and finding which definition a check gets for a name.

Declaration is ``@fixture``; resolution follows pytest: a fixture defined in a
check module beats one in the nearest ``conftest.py``, which beats farther
conftests, which beat plugins. A fixture that requests its own name gets the
definition it overrides. Setting fixtures up and tearing them down lives in
``_fixture_lifecycle``.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from fraiseql_checks.spec import TARGETS
from fraiseql_checks.trace import current, record

if TYPE_CHECKING:
    from fraiseql_checks.checks import CheckInfo

F = TypeVar("F", bound=Callable[..., Any])

FIXTURE_ATTR = "__fraiseql_fixture__"


class Scope(enum.IntEnum):
    """How long a fixture value lives; a wider fixture cannot use a narrower one."""

    CHECK = 0
    MODULE = 1
    SESSION = 2

    @classmethod
    def parse(cls, value: str) -> Scope:
        try:
            return cls[value.upper()]
        except KeyError:
            if value == "function":
                return cls.CHECK
            raise ValueError(f"fixture scope must be 'check', 'module' or 'session', got {value!r}") from None

    def __str__(self) -> str:
        return self.name.lower()


#: The kinds of target a fixture may reach: a check using it depends on that target, and
#: an alert that is the cause of that target's outage silences the check's alert.


@dataclasses.dataclass(frozen=True)
class FixtureSpec:
    scope: Scope
    name: str | None
    autouse: bool
    #: The target the fixture's value reaches (``TARGETS``), if any.
    target: str | None = None


@overload
def fixture(func: F) -> F: ...


@overload
def fixture(
    *, scope: str = ..., name: str | None = ..., autouse: bool = ..., target: str | None = ...
) -> Callable[[F], F]: ...


def fixture(
    func: Any = None, *, scope: str = "check", name: str | None = None, autouse: bool = False, target: str | None = None
) -> Any:
    """Declare a fixture, requested by checks through an argument of the same name.

    Plain functions, ``async def``, generators and async generators all work; with
    a generator, the code after ``yield`` is the teardown. ``scope`` is ``"check"``
    (new for every check run), ``"module"`` or ``"session"`` (set up once, torn
    down at the end). ``target`` says which kind of target its value reaches
    (``"database"``, ``"cache"``, ``"fraiseql"``, ``"prometheus"``): the checks using
    it depend on that target, and an alert about that target's outage silences theirs.
    """
    if target is not None and target not in TARGETS:
        raise ValueError(f"fixture target must be one of {', '.join(TARGETS)}, got {target!r}")
    spec = FixtureSpec(Scope.parse(scope), name, autouse, target)

    def mark(fn: F) -> F:
        setattr(fn, FIXTURE_ATTR, spec)
        return fn

    return mark(func) if func is not None else mark


class Kind(enum.Enum):
    SYNC = "sync"
    ASYNC = "async"
    GENERATOR = "generator"
    ASYNC_GENERATOR = "async generator"


def kind_of(func: Callable[..., Any]) -> Kind:
    if inspect.isasyncgenfunction(func):
        return Kind.ASYNC_GENERATOR
    if inspect.isgeneratorfunction(func):
        return Kind.GENERATOR
    if inspect.iscoroutinefunction(func):
        return Kind.ASYNC
    return Kind.SYNC


def argnames_of(func: Callable[..., Any]) -> tuple[str, ...]:
    """Names of the arguments a function requests (those without defaults)."""
    if type(func) is types.FunctionType and not hasattr(func, "__wrapped__"):
        code = func.__code__  # the fast path: no Signature object for plain functions
        if not code.co_argcount and not code.co_kwonlyargcount:  # most checks: no argument
            return ()
        positional = code.co_varnames[: code.co_argcount]
        keyword_only = code.co_varnames[code.co_argcount : code.co_argcount + code.co_kwonlyargcount]
        defaults = len(func.__defaults__ or ())
        kwdefaults = func.__kwdefaults__ or {}
        return tuple(positional[: len(positional) - defaults]) + tuple(
            name for name in keyword_only if name not in kwdefaults
        )
    names = []
    for param in inspect.signature(func).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.default is not param.empty:
            continue
        names.append(param.name)
    return tuple(names)


@dataclasses.dataclass(eq=False)
class FixtureDef:
    """One definition of a fixture, and where it is visible."""

    name: str
    func: Callable[..., Any]
    scope: Scope
    autouse: bool
    kind: Kind
    argnames: tuple[str, ...]
    #: ``None``: everywhere (a plugin); a directory: checks below it (a conftest);
    #: a file: the checks of that module.
    base: Path | None
    location: str
    #: The target its value reaches (``TARGETS``), if any.
    target: str | None = None

    def visible_from(self, path: Path) -> bool:
        base = self.base
        if base is None:
            return True
        if base.suffix == ".py":
            return base == path
        return base == path.parent or base in path.parents

    @property
    def depth(self) -> int:
        if self.base is None:
            return -1
        return len(self.base.parts) + (1 if self.base.suffix == ".py" else 0)


class FixtureLookupError(LookupError):
    """A check asked for something that cannot be provided (unknown name, a cycle)."""


@dataclasses.dataclass
class Closure:
    """The fixtures one check needs, in set-up order, and what each argument gets."""

    order: list[FixtureDef]
    #: For each definition, the definition each of its arguments resolves to.
    deps: dict[FixtureDef, dict[str, FixtureDef]]
    #: What the check's own arguments resolve to.
    args: dict[str, FixtureDef]


def _location(func: Callable[..., Any]) -> str:
    code = getattr(func, "__code__", None)
    if code is None:
        return repr(func)
    return f"{code.co_filename}:{code.co_firstlineno}"


class FixtureRegistry:
    """Every fixture definition known to the session, and name resolution."""

    def __init__(self) -> None:
        self._defs: dict[str, list[FixtureDef]] = {}
        self._chains: dict[tuple[str, Path], list[FixtureDef]] = {}
        self._closures: dict[tuple[Path, tuple[str, ...]], Closure | FixtureLookupError] = {}
        self._autouse: list[FixtureDef] = []
        self._autouse_names: dict[Path, tuple[str, ...]] = {}

    def parse(self, namespace: Any, base: Path | None) -> list[FixtureDef]:
        """Register the fixtures defined in a module, a conftest or a plugin object."""
        found = []
        holder = namespace.__dict__ if hasattr(namespace, "__dict__") else {}
        for attr, obj in list(holder.items()):
            spec = getattr(obj, FIXTURE_ATTR, None) if callable(obj) else None
            if not isinstance(spec, FixtureSpec):
                continue
            if not isinstance(namespace, type) and not inspect.ismodule(namespace):
                obj = getattr(namespace, attr)  # bound method of a plugin instance
            definition = FixtureDef(
                name=spec.name or attr,
                func=obj,
                scope=spec.scope,
                autouse=spec.autouse,
                kind=kind_of(obj),
                argnames=argnames_of(obj),
                base=base,
                location=_location(obj),
                target=spec.target,
            )
            self.add(definition)
            found.append(definition)
        return found

    def add(self, definition: FixtureDef) -> None:
        chain = self._defs.setdefault(definition.name, [])
        chain.append(definition)
        # Stable sort: farther (shallower) definitions first, nearest last.
        chain.sort(key=lambda d: d.depth)
        if definition.autouse:
            self._autouse.append(definition)
        self._chains.clear()
        self._closures.clear()
        self._autouse_names.clear()

    def definitions(self) -> list[FixtureDef]:
        """Every definition, in registration order per name (watch mode's reload copies some)."""
        return [definition for chain in self._defs.values() for definition in chain]

    def names_visible_from(self, path: Path) -> list[str]:
        return sorted(name for name in self._defs if self.chain(name, path))

    def chain(self, name: str, path: Path) -> list[FixtureDef]:
        """The definitions of ``name`` a check in ``path`` can see, farthest first."""
        key = (name, path)
        found = self._chains.get(key)
        if found is None:
            found = [d for d in self._defs.get(name, ()) if d.visible_from(path)]
            self._chains[key] = found
        return found

    def autouse_names(self, path: Path) -> tuple[str, ...]:
        found = self._autouse_names.get(path)
        if found is None:
            names: list[str] = []
            for definition in sorted(self._autouse, key=lambda d: d.depth):
                if definition.visible_from(path) and definition.name not in names:
                    names.append(definition.name)
            found = self._autouse_names[path] = tuple(names)
        return found

    def resolve(self, name: str, path: Path, requester: FixtureDef | None = None) -> FixtureDef:
        chain = self.chain(name, path)
        if requester is not None and requester.name == name:
            index = chain.index(requester) if requester in chain else len(chain)
            if index == 0:
                raise FixtureLookupError(
                    f"fixture {name!r} ({requester.location}) requests {name!r}, but there is no "
                    "farther definition for it to override"
                )
            return chain[index - 1]
        if not chain:
            available = ", ".join(self.names_visible_from(path)) or "none"
            raise FixtureLookupError(f"fixture {name!r} not found; available fixtures: {available}")
        return chain[-1]

    def targets_of(self, path: Path, argnames: Iterable[str], declared: Iterable[str] = ()) -> tuple[str, ...]:
        """The targets a check depends on: those its fixtures reach (``@fixture(target=...)``)
        and those it declares (``@check(depends_on=...)``), in name order. A check whose
        fixtures do not resolve depends on what it declares."""
        try:
            order = self.closure(path, argnames).order
        except FixtureLookupError:
            order = []
        return tuple(sorted({d.target for d in order if d.target} | set(declared)))

    def closure(self, path: Path, argnames: Iterable[str]) -> Closure:
        """Everything a check with these arguments needs, resolved and ordered.

        Raises ``FixtureLookupError`` for an unknown name, a dependency cycle or a
        wider fixture that depends on a narrower one.
        """
        names = argnames if type(argnames) is tuple else tuple(argnames)
        # The path's autouse fixtures are the same for each call until the definitions
        # change (both caches are cleared then): not looked up again for a known key.
        key = (path, names)
        cached = self._closures.get(key)
        if cached is None:
            wanted = self.autouse_names(path) + names
            try:
                cached = self._build_closure(path, wanted, set(argnames))
            except FixtureLookupError as exc:
                cached = exc
            self._closures[key] = cached
        if isinstance(cached, FixtureLookupError):
            raise cached
        return cached

    def _build_closure(self, path: Path, wanted: tuple[str, ...], own: set[str]) -> Closure:
        order: list[FixtureDef] = []
        deps: dict[FixtureDef, dict[str, FixtureDef]] = {}
        visiting: list[FixtureDef] = []

        def visit(definition: FixtureDef) -> None:
            if definition in deps:
                return
            if definition in visiting:
                cycle = [*visiting[visiting.index(definition) :], definition]
                raise FixtureLookupError("fixture dependency cycle: " + " -> ".join(d.name for d in cycle))
            visiting.append(definition)
            resolved: dict[str, FixtureDef] = {}
            for argname in definition.argnames:
                dependency = self.resolve(argname, path, definition)
                # As in pytest, any fixture may ask for ``request``: a wider one gets the
                # request of the check whose run set it up.
                scope_free = dependency.base is None and dependency.name == "request"
                if dependency.scope < definition.scope and not scope_free:
                    raise FixtureLookupError(
                        f"fixture {definition.name!r} ({definition.scope}) depends on "
                        f"{dependency.name!r} ({dependency.scope}): a {definition.scope}-scoped fixture "
                        f"cannot use a {dependency.scope}-scoped one"
                    )
                visit(dependency)
                resolved[argname] = dependency
            visiting.pop()
            deps[definition] = resolved
            order.append(definition)

        args: dict[str, FixtureDef] = {}
        for name in wanted:
            definition = self.resolve(name, path)
            visit(definition)
            if name in own:
                args[name] = definition
        return Closure(order=order, deps=deps, args=args)


# ---- built-in fixtures (this module is registered as the "fixtures" plugin) ---------


class Request:
    """What the ``request`` fixture gives: the running check and its context."""

    def __init__(self, run: Any) -> None:
        self._run = run
        self.config = run.config
        self.node = run.check
        self.check = run.check

    @property
    def trace_id(self) -> str:
        return str(self._run.trace_id)

    @property
    def span_id(self) -> str:
        return str(self._run.span_id)

    @property
    def traceparent(self) -> str:
        return str(self._run.traceparent)

    def record(self, name: str, value: float) -> None:
        """Same as ``fraiseql_checks.record``."""
        record(name, value)


@fixture(scope="session", name="config")
def config_fixture() -> Any:
    """The configuration of this run (``config.get(name)``, ``config.threshold(name, default)``)."""
    return current().config


@fixture(name="request")
def request_fixture() -> Request:
    """The running check: ``request.node``, ``request.trace_id``, ``request.config``."""
    return Request(current())


def dependencies_of(registry: FixtureRegistry, check: CheckInfo) -> tuple[str, ...]:
    """The targets ``check`` depends on: its fixtures' (``@fixture(target=...)``), its
    ``@check(depends_on=...)`` and its ``@alert(depends_on=...)``."""
    declared = (*check.spec.depends_on, *getattr(check.spec.alert, "depends_on", ()))
    return registry.targets_of(check.path, check.argnames, declared)
