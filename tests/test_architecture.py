"""The rooms of docs/architecture.md, held: leaf types import no room, and no room imports
one above it (at import time; a function may import lazily, behind a hook or a command)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import REPO

PACKAGE = REPO / "fraiseql_checks"
#: The leaf types: imported by every room, importing only each other.
LEAVES = {
    "durations",
    "errors",
    "frames",
    "masking",
    "metrics",
    "metrictypes",
    "outbox",
    "promql",
    "registry",
    "result",
    "runbooks",
    "silences",
    "spec",
    "stash",
    "states",
    "thresholds",
    "trace",
    "yamlfile",
    "_version",
}
#: What a room may not import at import time.
FORBIDDEN = {
    "core": {"targets", "reports", "alerting", "dashboards", "slo", "audit", "watch", "stores", "notify"},
    "stores": {"core", "targets", "reports", "alerting", "dashboards", "slo", "audit", "watch", "notify", "notifiers"},
    "notify": {"core", "targets", "reports", "alerting", "dashboards", "slo", "audit", "notifiers"},
    "targets": {"alerting", "dashboards", "slo", "audit", "watch", "stores", "notify"},
    "reports": {"targets", "alerting", "dashboards", "slo", "audit", "watch", "stores", "notify"},
    "alerting": {"dashboards", "slo", "audit", "watch", "stores"},
    "api": {"core", "targets", "reports"},
    "status": {"core", "targets", "reports", "notify", "notifiers"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_time_imports(path: Path) -> set[str]:
    """The package modules ``path`` imports at import time (not under ``TYPE_CHECKING``,
    not inside functions), relative to ``fraiseql_checks``."""
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
                continue
            if isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                visit(node.orelse)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fraiseql_checks"):
                base = node.module.removeprefix("fraiseql_checks").lstrip(".")
                if base:
                    found.add(base)
                else:  # from fraiseql_checks import metrics
                    found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("fraiseql_checks."):
                        found.add(alias.name.removeprefix("fraiseql_checks."))

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return found


MODULES = {module_name(path): import_time_imports(path) for path in sorted(PACKAGE.rglob("*.py"))}


def test_the_parser_sees_imports_and_skips_type_checking_blocks() -> None:
    source = PACKAGE / "runbooks.py"
    assert "config" in source.read_text() and "config" not in MODULES["runbooks"]  # TYPE_CHECKING only
    assert MODULES["metrics"] == {"metrictypes"}
    assert "core.fixtures" in MODULES["targets.plugin"]


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_leaf_types_import_only_leaf_types(leaf: str) -> None:
    assert leaf in MODULES, f"{leaf} is listed as a leaf but does not exist"
    assert MODULES[leaf] <= LEAVES, f"{leaf} imports {sorted(MODULES[leaf] - LEAVES)}"


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_no_room_imports_one_above_it(room: str) -> None:
    offenders = {
        f"{module} imports {target}"
        for module, imports in MODULES.items()
        if module == room or module.startswith(room + ".")
        for target in imports
        if target.split(".")[0] in FORBIDDEN[room]
    }
    assert not offenders, sorted(offenders)


def test_the_package_has_the_rooms_the_architecture_page_draws() -> None:
    page = (REPO / "docs" / "architecture.md").read_text()
    rooms = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert rooms == [
        "alerting",
        "api",
        "audit",
        "core",
        "dashboards",
        "init",
        "kubernetes",
        "notifiers",
        "notify",
        "reports",
        "slo",
        "status",
        "stores",
        "targets",
        "watch",
    ]
    for room in rooms:
        assert f"  {room}/" in page, room
    for leaf in LEAVES - {"_version", "registry"}:
        assert f"{leaf}.py" in page, leaf
