"""Subcommands take only the options that mean something to them, and list what they can do."""

from __future__ import annotations

from typing import Any

import pytest

#: The generators the package ships (written here, not read from the registry under test).
GENERATORS = ["alertmanager", "alerts", "dashboards", "helm", "kubernetes", "slo-rules"]


@pytest.mark.parametrize(
    "args",
    [
        ("generate", "dashboards", "--watch"),
        ("generate", "dashboards", "-k", "disk"),
        ("generate", "alerts", "--junitxml", "out.xml"),
        ("generate", "alerts", "--timeout", "5s"),
        ("grafana", "diff", "--watch"),
        ("grafana", "diff", "--store", "x.db"),
        ("grafana", "diff", "-x"),
        ("audit", "report", "-o", "e.json", "--workers", "2"),
    ],
)
def test_an_option_that_does_not_apply_is_one_line_and_exit_4(checkdir: Any, args: tuple[str, ...]) -> None:
    result = checkdir.run(*args)
    assert result.ret == 4
    flag = next(arg for arg in args[2:] if arg.startswith("-") and arg not in ("-o",))
    assert result.stderr.splitlines() == [
        f"ERROR: {flag} does not apply to `fraiseql-check {args[0]}` (see `fraiseql-check {args[0]} --help`)"
    ]


def test_a_refused_option_is_not_in_the_help(checkdir: Any) -> None:
    for command, absent, present in (
        ("audit", ["--watch", "--listen", "--workers", "--store", "--collect-only"], ["-k EXPR", "--junitxml", "-q"]),
        ("generate", ["--watch", "--junitxml", "-k EXPR", "--timeout"], ["--listen", "--store", "-c FILE"]),
        ("grafana", ["--watch", "--store", "-k EXPR", "--tb"], ["-c FILE", "-p NAME"]),
    ):
        result = checkdir.run(command, "--help")
        assert result.ret == 0
        for flag in absent:
            assert flag not in result.stdout, (command, flag)
        for flag in present:
            assert flag in result.stdout, (command, flag)


def test_the_options_a_command_takes_still_work(checkdir: Any) -> None:
    checkdir.write("checks/check_a.py", "def check_a():\n    assert True\n")
    result = checkdir.run("generate", "kubernetes", "--listen", "0.0.0.0:9555", "-o", "out")
    assert result.ret == 0, result.stderr
    deployment = (checkdir.path / "out" / "deploy" / "kubernetes" / "base" / "deployment.yaml").read_text()
    assert "containerPort: 9555" in deployment


@pytest.mark.parametrize(
    ("command", "title", "names"),
    [
        ("generate", "generators", GENERATORS),
        ("grafana", "actions", ["diff", "push"]),
        ("audit", "actions", ["report"]),
    ],
)
def test_a_command_without_its_subject_lists_them_and_exits_4(
    checkdir: Any, command: str, title: str, names: list[str]
) -> None:
    """As git does for `git` alone: a usage error (a script with an empty $NAME must not pass),
    the list of what exists, one per line with its help."""
    result = checkdir.run(command)
    assert result.ret == 4
    first, *listing = result.stderr.splitlines()
    assert first == f"ERROR: `fraiseql-check {command}` needs one of its {title} (fraiseql-check {command} --help):"
    assert [line.split()[0] for line in listing] == names
    assert all(len(line.split(maxsplit=1)) == 2 for line in listing)  # each with its help
    assert "PATH" not in result.stderr and "required" not in result.stderr
    assert result.stdout == ""


def test_generate_help_lists_the_generators(checkdir: Any) -> None:
    result = checkdir.run("generate", "--help")
    assert result.ret == 0
    lines = result.stdout.splitlines()
    start = lines.index("generators:")
    assert [line.split()[0] for line in lines[start + 1 :]] == GENERATORS
    description = result.stdout.split("positional arguments")[0]
    assert "Kubernetes manifests" in description and "Helm chart" in description


def test_audit_usage_does_not_claim_path_is_required(checkdir: Any) -> None:
    result = checkdir.run("audit", "report")
    assert result.ret == 4
    assert "PATH" not in result.stderr
    usage = checkdir.run("audit", "--help").stdout
    assert "[PATH ...]" in usage
