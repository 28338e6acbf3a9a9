"""Collection: finding check files, importing them as pytest does, building checks.

Check modules and conftests are compiled with pytest's assertion rewriting; the
rewritten code is cached by content (``rewrite_cache``). A file that does not
import becomes a ``CollectError`` and collection goes on with the next file.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib.util
import inspect
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FunctionType, ModuleType
from typing import TYPE_CHECKING, Any

from fraiseql_checks.checks import Check
from fraiseql_checks.config import UsageError
from fraiseql_checks.core import _interrupt
from fraiseql_checks.core._pytest_compat import (
    Skipped,
    is_mark,
    make_mark,
    parametrize,
)
from fraiseql_checks.core.fixtures import FIXTURE_ATTR, argnames_of
from fraiseql_checks.core.rewrite_cache import CACHE_TAG, RewriteCache
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.spec import CheckSpec, spec_of
from fraiseql_checks.suites import is_shipped

if TYPE_CHECKING:
    from _pytest.mark.structures import Mark

    from fraiseql_checks.core.session import Session

CHECK_FILE_PATTERN = "check_*.py"
CHECK_FUNCTION_PREFIX = "check_"
CONFTEST = "conftest.py"
_NORECURSE = ("*.egg", "*.egg-info", ".*", "_darcs", "build", "CVS", "dist", "node_modules", "venv", "__pycache__")
#: The metadata of a function without ``@check``: shared, never changed (a ``CheckSpec``
#: is frozen and its mappings are read-only by contract).
_NO_SPEC = CheckSpec()


@dataclasses.dataclass
class CollectError:
    """A file (check module or conftest) that could not be collected, or a check
    that could not be built from its function."""

    id: str
    message: str
    longrepr: str = ""
    #: The class name of the exception that stopped it (JUnit's ``type``).
    exc_type: str = ""


def module_name(path: Path, rootdir: Path) -> str:
    try:
        parts = path.with_suffix("").relative_to(rootdir).parts
    except ValueError:
        parts = path.with_suffix("").parts[1:]
    return ".".join("".join(c if c.isalnum() or c == "_" else "_" for c in part) for part in parts)


def _import_base(path: Path) -> Path:
    """The directory to put on ``sys.path`` (pytest's ``prepend`` import mode)."""
    directory = path.parent
    while (directory / "__init__.py").is_file() and directory.parent != directory:
        directory = directory.parent
    return directory


def import_file(path: Path, rootdir: Path, cache: RewriteCache) -> ModuleType:
    """Import ``path`` with assertion rewriting, under a name derived from its place."""
    code = cache.code(path)
    name = module_name(path, rootdir)
    base = str(_import_base(path))
    if base not in sys.path:
        sys.path.insert(0, base)
    module = ModuleType(name)
    module.__file__ = str(path)
    module.__spec__ = importlib.util.spec_from_file_location(name, path)
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def marks_of(obj: Any) -> list[Mark]:
    raw = getattr(obj, "pytestmark", None)
    if not raw:
        return []
    if not isinstance(raw, list):
        raw = [raw]
    return [getattr(mark, "mark", mark) for mark in raw if is_mark(getattr(mark, "mark", mark))]


def _short_traceback(exc: BaseException, path: Path) -> str:
    """The part of an import traceback that is in the user's files."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if "fraiseql_checks" not in f.filename or is_shipped(f.filename)  # the shipped suites are checks
    ]
    lines = traceback.format_list(frames) if frames else []
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


def import_error(relpath: str, path: Path, exc: BaseException, what: str) -> CollectError:
    if isinstance(exc, SyntaxError):
        where = f" (line {exc.lineno})" if exc.lineno else ""
        message = f"SyntaxError{where}: {exc.msg}"
    elif isinstance(exc, Skipped):
        message = f"module-level skip: {exc.msg}"
    elif isinstance(exc, SystemExit):
        message = f"SystemExit({exc.code!r}): sys.exit() while importing"
    else:
        message = f"{type(exc).__name__}: {exc}"
    return CollectError(
        id=relpath,
        message=f"error importing {what}: {message}",
        longrepr=_short_traceback(exc, path),
        exc_type=type(exc).__name__,
    )


class Collector:
    """Walks the given paths and collects checks through the ``fraiseql_collect_file`` hook."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.config = session.config
        self.rootdir = session.config.rootdir
        self._conftests: dict[Path, ModuleType | CollectError | None] = {}
        folder = session.config.get("cache_dir")
        self.rewrite_cache = RewriteCache(
            None if session.config.getoption("no_cache") else self.rootdir / folder / "rewrite" / CACHE_TAG,
            rewrite=session.config.getoption("assertmode", "rewrite") == "rewrite",
        )
        self._reported: set[str] = set()
        #: Called with a file's relative path before it is imported (watch mode's
        #: workers say which file they import, in case the import never ends).
        self.on_import: Callable[[str], None] | None = None
        #: Relative paths not to import: files whose import ended a worker process.
        self.skip: dict[str, str] = {}
        #: Node ids given that matched no check in the last ``collect``: ``/abs/path.py::name``.
        self.not_found: list[str] = []

    # -- conftests ---------------------------------------------------------------------

    def conftest(self, directory: Path) -> ModuleType | CollectError | None:
        """The conftest of ``directory``, imported and registered once."""
        if directory in self._conftests:
            return self._conftests[directory]
        path = directory / CONFTEST
        result: ModuleType | CollectError | None = None
        if path.is_file() and self.config.relpath(path) in self.skip:
            result = CollectError(id=self.config.relpath(path), message=self.skip[self.config.relpath(path)])
        elif path.is_file():
            relpath = self.config.relpath(path)
            if self.on_import is not None:
                self.on_import(relpath)
            try:
                module = self.import_conftest(path)
                pm = self.config.pluginmanager
                if pm.get_plugin(str(path)) is None:
                    pm.register(module, name=str(path))
                    pm.check_pending()
                self.session.fixtures.parse(module, base=directory)
                result = module
            except BaseException as exc:  # sys.exit() at import is a broken conftest, not the end of the run
                if _interrupt.is_real(exc):
                    raise
                result = import_error(relpath, path, exc, "conftest")
        self._conftests[directory] = result
        return result

    def import_conftest(self, path: Path) -> ModuleType:
        """Import a conftest (the pytest plugin reuses the module pytest loaded)."""
        return import_file(path, self.rootdir, self.rewrite_cache)

    def conftest_chain(self, path: Path) -> CollectError | None:
        """Load the conftests from the root down to ``path``'s folder; the first broken one."""
        directory = path.parent
        if directory == self.rootdir or self.rootdir in directory.parents:
            chain = [self.rootdir, *reversed([d for d in directory.parents if self.rootdir in d.parents]), directory]
            chain = list(dict.fromkeys(chain))
        else:
            chain = [directory]
        for folder in chain:
            found = self.conftest(folder)
            if isinstance(found, CollectError):
                return found
        return None

    # -- files and modules -------------------------------------------------------------

    def walk(self, directory: Path) -> Iterator[Path]:
        for root, dirs, files in os.walk(directory):
            dirs[:] = sorted(
                d
                for d in dirs
                if not any(fnmatch.fnmatch(d, pattern) for pattern in _NORECURSE)
                and not (Path(root, d) / "pyvenv.cfg").exists()
            )
            for name in sorted(files):
                if fnmatch.fnmatch(name, CHECK_FILE_PATTERN):
                    yield Path(root, name)

    def collect_module(self, path: Path) -> list[Check | CollectError]:
        relpath = self.config.relpath(path)
        if relpath in self.skip:
            return [CollectError(id=relpath, message=self.skip[relpath])]
        broken = self.conftest_chain(path)
        if broken is not None:
            if broken.id in self._reported:
                return []
            self._reported.add(broken.id)
            return [broken]
        if self.on_import is not None:
            self.on_import(relpath)
        try:
            module = import_file(path, self.rootdir, self.rewrite_cache)
        except BaseException as exc:  # sys.exit() at import is a broken file, not the end of the run
            if _interrupt.is_real(exc):
                raise
            return [import_error(relpath, path, exc, "check module")]
        self.session.fixtures.parse(module, base=path)
        return self.checks_in(module, path, relpath)

    def checks_in(self, module: ModuleType, path: Path, relpath: str) -> list[Check | CollectError]:
        found: list[Check | CollectError] = []
        module_marks = marks_of(module)
        config = self.config
        defaults = (config.get("severity"), config.get("timeout"), config.get("interval"))
        for attr, obj in list(module.__dict__.items()):
            if type(obj) is not FunctionType or hasattr(obj, FIXTURE_ATTR):
                continue
            spec = spec_of(obj)
            if spec is None and not attr.startswith(CHECK_FUNCTION_PREFIX):
                continue
            try:
                found.extend(self.build(module, path, relpath, attr, obj, spec, module_marks, defaults))
            except (ValueError, TypeError) as exc:
                found.append(
                    CollectError(
                        id=f"{relpath}::{attr}", message=f"cannot collect {attr}: {exc}", exc_type=type(exc).__name__
                    )
                )
        return found

    def build(
        self,
        module: ModuleType,
        path: Path,
        relpath: str,
        attr: str,
        func: Any,
        spec: CheckSpec | None,
        module_marks: list[Mark],
        defaults: tuple[str, float, float],
    ) -> list[Check]:
        """The checks one function gives: one, or one per parameter set.

        ``defaults`` are the configured severity, timeout and interval.
        """
        code = getattr(inspect.unwrap(func) if hasattr(func, "__wrapped__") else func, "__code__", None)
        flags = getattr(code, "co_flags", 0)
        if flags & (inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR):
            raise TypeError("a check cannot be a generator; use a fixture for set-up and teardown")
        spec = spec or _NO_SPEC
        if spec.alert is not None:
            spec.alert.validate()  # an @alert's PromQL, parsed as Prometheus will
        severity = spec.severity or defaults[0]
        timeout = spec.timeout or defaults[1]
        interval = spec.interval or defaults[2]
        is_async = bool(flags & inspect.CO_COROUTINE) or (
            # a wrapper, or one marked as a coroutine function (3.12+): ask inspect
            (code is not getattr(func, "__code__", None) or hasattr(func, "_is_coroutine_marker"))
            and inspect.iscoroutinefunction(func)
        )
        check = Check(
            id=f"{relpath}::{attr}",
            name=attr,
            function_name=attr,
            path=path,
            module=module,
            func=func,
            spec=spec,
            is_async=is_async,
            lineno=getattr(code, "co_firstlineno", 0),
            severity=severity,
            timeout=timeout,
            interval=interval,
            argnames=argnames_of(func),
        )
        own_marks = marks_of(func)  # (not ``func.__dict__``: asking makes a dict for every function)
        marks = own_marks + module_marks if own_marks or module_marks else []
        if not marks:  # most checks: no parameters, no marks
            return [check]
        requested, nodeid = check.argnames, check.id
        arguments: set[str] | None = None
        callspecs: list[tuple[dict[str, Any], list[str], list[Mark]]] = [({}, [], [])]
        for mark in marks:
            if mark.name != "parametrize":
                continue
            if mark.kwargs.get("indirect"):
                raise ValueError("indirect parametrization is not supported")
            argnames_arg, argvalues = [*mark.args, mark.kwargs.get("argnames"), mark.kwargs.get("argvalues")][:2]
            names, sets = parametrize(argnames_arg, argvalues, mark.kwargs.get("ids"), func, nodeid)
            if arguments is None:
                arguments = set(inspect.signature(func).parameters)
            for name in names:
                if name not in arguments:
                    raise ValueError(f"function uses no argument {name!r}")
            if not sets:
                empty = make_mark("skip", (), {"reason": f"got empty parameter set for ({', '.join(names)})"})
                callspecs = [(params, ids, [*pmarks, empty]) for params, ids, pmarks in callspecs]
                continue
            callspecs = [
                (
                    {**params, **dict(zip(names, values, strict=True))},
                    [*ids, set_id],
                    [*pmarks, *[getattr(m, "mark", m) for m in set_marks]],
                )
                for params, ids, pmarks in callspecs
                for set_id, values, set_marks in sets
            ]
        config = self.config
        # A parameter may be a secret (a DSN): ids are masked like everything the tool writes,
        # and ids made equal by it are told apart by their position, as pytest does.
        param_ids = [config.mask("-".join(ids)) if ids else None for _, ids, _ in callspecs]
        if len(set(param_ids)) < len(param_ids):
            param_ids = [
                f"{pid}{n}" if pid is not None and param_ids.count(pid) > 1 else pid for n, pid in enumerate(param_ids)
            ]
        checks = []
        for (params, _, param_marks), param_id in zip(callspecs, param_ids, strict=True):
            name = f"{attr}[{param_id}]" if param_id is not None else attr
            checks.append(
                dataclasses.replace(  # the function's check, one per parameter set
                    check,
                    id=f"{relpath}::{name}",
                    name=name,
                    argnames=tuple(a for a in requested if a not in params) if params else requested,
                    params=params,
                    param_id=param_id,
                    marks=[*param_marks, *(m for m in marks if m.name != "parametrize")],
                )
            )
        return checks

    # -- the whole walk ----------------------------------------------------------------

    def collect(self, args: Sequence[str]) -> tuple[list[Check], list[CollectError]]:
        """Collect every check under ``args`` (paths or node ids).

        Node ids that name no check are kept in ``not_found`` (``path::name``, the path
        absolute), for the session to refuse as pytest does.
        """
        targets: list[tuple[Path, str | None]] = []
        self.not_found = []
        for arg in args:
            path_text, _, node_name = arg.partition("::")
            path = (self.config.invocation_dir / path_text).resolve()
            if not path.exists():
                raise UsageError(f"file or directory not found: {path_text}")
            if node_name and path.is_dir():
                raise UsageError(f"directory argument cannot contain :: selection parts: {arg}")
            targets.append((path, node_name or None))
        self.session.initpaths = {path for path, _ in targets}
        files: dict[Path, set[str] | None] = {}
        for path, name in targets:
            if path.is_dir():
                for found in self.walk(path):
                    files.setdefault(found, None)
            elif name is None:
                files[path] = None
            elif path not in files or files[path] is not None:
                files.setdefault(path, set()).add(name)  # type: ignore[union-attr]
        checks: list[Check] = []
        errors: list[CollectError] = []
        self.rewrite_cache.prepare(list(files))
        try:
            self._collect_files(files, checks, errors)
        finally:
            self.rewrite_cache.finish()
        return checks, errors

    def _collect_files(
        self, files: dict[Path, set[str] | None], checks: list[Check], errors: list[CollectError]
    ) -> None:
        hook = self.config.hook
        for path, names in files.items():
            matched: set[str] = set()
            broken = False
            for items in hook.fraiseql_collect_file(path=path, session=self.session):
                for item in items or ():
                    if isinstance(item, CollectError):
                        errors.append(item)
                        broken = True
                    elif names is None or item.name in names or item.function_name in names:
                        checks.append(item)
                        matched.update((item.name, item.function_name))
            if names is not None and not broken:  # a file that did not collect is reported as such
                self.not_found.extend(f"{path}::{name}" for name in sorted(names - matched))


@hookimpl
def fraiseql_collect_file(path: Path, session: Session) -> list[Check | CollectError] | None:
    if path.suffix != ".py":
        return None
    if not fnmatch.fnmatch(path.name, CHECK_FILE_PATTERN) and path not in session.initpaths:
        return None
    return session.collector.collect_module(path)
