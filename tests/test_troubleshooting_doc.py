"""docs/troubleshooting.md quotes every usage error the package can raise.

The messages are read from the source (the constant text of each ``UsageError(...)``
call, by AST), so a new error without its row in the page fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fraiseql_checks"
PAGE = ROOT / "docs" / "troubleshooting.md"
#: A fragment worth quoting holds a word of three letters or more; ": " or "--" alone does not.
_WORDY = re.compile(r"[A-Za-z]{3,}")


def constant_text(node: ast.expr) -> tuple[str, ...] | None:
    """The constant pieces of a message that hold a word, in order: the whole string, or
    the literal parts of an f-string. ``None`` when the message is all variables
    (``UsageError(str(exc))``): it is made, and documented, elsewhere."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        parts = [node.value]
    elif isinstance(node, ast.JoinedStr):
        parts = [v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    else:
        return None
    pieces = tuple(part.strip() for part in parts if _WORDY.search(part))
    return pieces or None


def quoted(page: str, pieces: tuple[str, ...]) -> bool:
    """Whether one line of the page holds every piece, in order (the variable parts
    between them written as the page likes: ``…``, an example value)."""
    pattern = re.compile(".*?".join(re.escape(piece) for piece in pieces))
    return any(pattern.search(line) for line in page.splitlines())


def usage_errors() -> list[tuple[str, int, tuple[str, ...]]]:
    """``(file, line, constant text)`` of every ``UsageError(...)`` in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "UsageError"
                and node.args
            ):
                text = constant_text(node.args[0])
                if text is not None:
                    found.append((str(path.relative_to(ROOT)), node.lineno, text))
    return found


def test_the_source_has_usage_errors_to_look_for() -> None:
    # guards the reader above: if it found nothing, the test below would pass for nothing
    texts = [pieces for _, _, pieces in usage_errors()]
    assert len(texts) >= 30
    assert ("config file not found:",) in texts
    assert ("cannot listen on", ":") not in texts  # a piece without a word is not looked for
    assert ("cannot listen on",) in texts


def test_a_line_must_hold_every_piece_in_order() -> None:
    page = "| `store: … is used by another watcher (pid …)` | x |\n| `a SQLite store` |"
    assert quoted(page, ("store:", "is used by another watcher (pid", ")"))
    assert not quoted(page, ("is used by another watcher", "a SQLite store"))  # not on one line
    assert not quoted(page, ("is used by another watcher", "store:"))  # not in this order


@pytest.mark.parametrize(("where", "line", "pieces"), usage_errors(), ids=lambda v: str(v)[:60])
def test_every_usage_error_is_in_the_page(where: str, line: int, pieces: tuple[str, ...]) -> None:
    page = PAGE.read_text(encoding="utf-8").replace("\\|", "|")
    assert quoted(page, pieces), f"{where}:{line}: docs/troubleshooting.md does not quote {' … '.join(pieces)!r}"
