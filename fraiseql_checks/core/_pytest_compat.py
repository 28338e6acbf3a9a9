"""Everything taken from pytest's internals, in one place.

Checks must feel like tests: the same assertion rewriting, the same comparison
explanations, the same parametrize ids, the same ``-k``/``-m`` expressions. pytest
does not export these as public API, so this module is the only one that imports
``_pytest``; a pytest upgrade that moves them breaks here and nowhere else.
"""

from __future__ import annotations

import ast
import inspect
import io
import os
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import _pytest
from _pytest._version import version as PYTEST_VERSION
from _pytest.outcomes import Failed, Skipped  # raised by pytest.fail() / pytest.skip()

from fraiseql_checks.core import _assert_helpers

if TYPE_CHECKING:
    from _pytest.mark.structures import Mark

# Not ``import pytest``, and not even most of ``_pytest`` at start: its assertion,
# marks and traceback modules import pytest's configuration machinery (~90 ms, a
# third of a warm start). Each is imported where it is first needed: rewriting a
# file that is not cached yet, a failing assert, a mark, a traceback. A check
# module that imports pytest itself has loaded them anyway.

#: Where pytest's own modules live (their frames are left out of tracebacks).
PYTEST_DIR = os.path.dirname(_pytest.__file__)
#: What the code of rewritten modules looks like; part of the rewrite cache's tag.
#: 2: the helpers of rewritten asserts are imported on first use (``_assert_helpers``).
REWRITE_FORMAT = 2

__all__ = [
    "PYTEST_DIR",
    "PYTEST_VERSION",
    "REWRITE_FORMAT",
    "Failed",
    "Skipped",
    "compile_expression",
    "explain_comparisons",
    "format_exception",
    "is_mark",
    "load_assertion_helpers",
    "make_mark",
    "parametrize",
    "rewrite_module",
]

_PYTEST_HELPERS = "_pytest.assertion.rewrite"


def rewrite_module(source: bytes, filename: str) -> types.CodeType:
    """Compile ``source`` with pytest's assertion rewriting applied.

    pytest's rewriter puts ``import _pytest.assertion.rewrite as @pytest_ar`` at the
    top of the module, which a passing assert never uses; the import is pointed at
    ``_assert_helpers``, which loads pytest's helpers when a failing assert asks.
    """
    from _pytest.assertion.rewrite import rewrite_asserts

    tree = ast.parse(source, filename=filename)
    rewrite_asserts(tree, source, filename, None)
    for statement in tree.body:
        if isinstance(statement, ast.Import):
            for alias in statement.names:
                if alias.name == _PYTEST_HELPERS and alias.asname == "@pytest_ar":
                    alias.name = _assert_helpers.__name__
    return compile(tree, filename, "exec", dont_inherit=True)


def load_assertion_helpers() -> None:
    """Import pytest's assert helpers now, where the first failing assert of a
    long-lived process (a watch worker) would otherwise pay for it (~70 ms) inside
    a check's run."""
    import _pytest.assertion.rewrite  # noqa: F401


def is_mark(obj: object) -> bool:
    """Whether ``obj`` is a pytest mark (none can exist before pytest's marks are imported)."""
    structures = sys.modules.get("_pytest.mark.structures")
    return structures is not None and isinstance(obj, structures.Mark)


def make_mark(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Mark:
    from _pytest.mark.structures import Mark

    return Mark(name, args, kwargs)


_MAX_EXPLANATION_LINES = 8  # pytest's default truncation, lifted by -vv
_INI_DEFAULTS = {"assertion_text_diff_style": "ndiff"}


class _AssertionConfig:
    """The few attributes of a pytest ``Config`` that pytest's own
    ``pytest_assertrepr_compare`` implementation reads (its signature is the public
    hook's, stable across pytest releases, unlike the helpers behind it)."""

    VERBOSITY_ASSERTIONS = "assertions"

    def __init__(self, verbosity: int) -> None:
        self.verbosity = verbosity
        self.pluginmanager = self

    def has_plugin(self, name: str) -> bool:
        return False  # no terminal writer: plain-text diffs

    def get_verbosity(self, verbosity_type: str | None = None) -> int:
        return self.verbosity

    def get_terminal_writer(self) -> _AssertionConfig:
        return self

    def _highlight(self, source: str, lexer: str = "python") -> str:
        return source

    def getini(self, name: str) -> Any:
        return _INI_DEFAULTS.get(name)


@contextmanager
def explain_comparisons(verbosity: int = 0) -> Iterator[None]:
    """Make failing rewritten asserts carry pytest's diffs, as during a pytest run.

    Inside a pytest run (our pytest plugin) pytest has set this up already, and we
    leave its own hook in place.
    """
    util: Any = sys.modules.get("_pytest.assertion.util")  # pytest's, if loaded
    if _assert_helpers.explain is not None or (util is not None and util._reprcompare is not None):
        # a run inside a run (or inside pytest): the outer one's explainer stays
        yield
        return
    config = _AssertionConfig(verbosity)

    def reprcompare(op: str, left: object, right: object) -> str | None:
        from _pytest.assertion import pytest_assertrepr_compare as _assertrepr_compare

        explanation = list(_assertrepr_compare(config, op, left, right) or ())  # type: ignore[arg-type]
        if not explanation:
            return None
        if verbosity < 2 and len(explanation) > _MAX_EXPLANATION_LINES + 1:
            hidden = len(explanation) - _MAX_EXPLANATION_LINES
            explanation = [
                *explanation[:_MAX_EXPLANATION_LINES],
                "",
                f"...Full output truncated ({hidden} lines hidden), use '-vv' to show",
            ]
        lines = [line.replace("\n", "\\n") for line in explanation]
        return "\n~".join(lines).replace("%", "%%")

    # Installed now if pytest's assertion code is loaded, else by ``_assert_helpers``
    # when the first failing assert loads it.
    _assert_helpers.explain = reprcompare
    if util is not None:
        util._reprcompare = reprcompare
    try:
        yield
    finally:
        _assert_helpers.explain = None
        # A check's thread may be importing it still (a run stopped by -x): a module
        # partly made, without the name yet.
        util = sys.modules.get("_pytest.assertion.util")
        if getattr(util, "_reprcompare", None) is reprcompare:
            util._reprcompare = None


def compile_expression(text: str) -> Callable[[Callable[..., bool]], bool]:
    """Compile a ``-k``/``-m`` expression; ``ValueError`` when it does not parse."""
    from _pytest.mark.expression import Expression

    try:
        expression = Expression.compile(text)
    except Exception as exc:  # pytest raises its own UsageError/ParseError types
        raise ValueError(f"wrong expression {text!r}: {exc}") from None

    def evaluate(matcher: Callable[..., bool]) -> bool:
        return bool(expression.evaluate(matcher))

    return evaluate


def parametrize(
    argnames: str | Sequence[str],
    argvalues: Any,
    ids: Any,
    func: Callable[..., Any],
    nodeid: str,
) -> tuple[list[str], list[tuple[str, tuple[Any, ...], list[Any]]]]:
    """One ``parametrize`` mark expanded as pytest does it.

    Returns the argument names and, per parameter set, ``(id, values, marks)``.
    An empty ``argvalues`` gives no sets (the caller reports the skip).
    """
    from _pytest.mark.structures import ParameterSet

    names, force_tuple = ParameterSet._parse_parametrize_args(argnames, argvalues)
    sets = ParameterSet._parse_parametrize_parameters(argvalues, force_tuple)
    for one in sets:
        if len(one.values) != len(names):
            raise ValueError(
                f'{nodeid}: in "parametrize" the number of names ({len(names)}) '
                f"{list(names)} must equal the number of values ({len(one.values)}) {list(one.values)}"
            )
    if not sets:
        return list(names), []
    from _pytest.python import IdMaker

    idfn = ids if callable(ids) else None
    id_list = None if callable(ids) or ids is None else list(ids)
    kwargs: dict[str, Any] = {
        "argnames": names,
        "parametersets": sets,
        "idfn": idfn,
        "ids": id_list,
        "config": None,
        "nodeid": nodeid,
        "func_name": getattr(func, "__name__", None),
    }
    accepted = inspect.signature(IdMaker).parameters
    maker = IdMaker(**{key: value for key, value in kwargs.items() if key in accepted})
    made = maker.make_unique_parameterset_ids()
    return list(names), [
        (str(made_id), tuple(one.values), list(one.marks)) for made_id, one in zip(made, sets, strict=True)
    ]


def format_exception(exc: BaseException, style: str, hide: Callable[[str], bool]) -> str:
    """pytest's rendering of a traceback, leaving out frames whose file ``hide`` rejects."""
    from _pytest._code import ExceptionInfo
    from _pytest._io import TerminalWriter

    info = ExceptionInfo.from_exception(exc)
    info.traceback = info.traceback.filter(lambda entry: not hide(str(entry.path)))
    if not info.traceback:
        return f"{type(exc).__name__}: {exc}"
    rendered = info.getrepr(style=style, tbfilter=False, chain=False)  # type: ignore[arg-type]
    # str(rendered) strips the text, and with it the first line's indentation.
    out = io.StringIO()
    writer = TerminalWriter(file=out)
    writer.hasmarkup = False
    rendered.toterminal(writer)
    return out.getvalue().strip("\n")
