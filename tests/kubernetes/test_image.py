"""The container image recipe: the Dockerfile's facts agree with the manifests, and its install
steps, run in a clean virtual environment (no container engine here), give a watcher that starts,
answers its probes and stops on the image's stop signal."""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from fraiseql_checks.kubernetes import manifests
from fraiseql_checks.watch.plugin import DEFAULT_LISTEN, DEFAULT_STORE
from tests.support import REPO
from tests.support.checkdir import CheckDir
from tests.support.services import free_port, require, wait_until
from tests.support.validators import wheelhouse

PORT = int(DEFAULT_LISTEN.rsplit(":", 1)[1])


@dataclass
class Stage:
    base: str
    name: str | None
    steps: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        return [arguments for name, arguments in self.steps if name == instruction]

    def one(self, instruction: str) -> str:
        (found,) = self.all(instruction)
        return found


def stages(text: str) -> list[Stage]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments), continuations joined."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        pending += raw.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        lines.append(pending.strip())
        pending = ""
    found: list[Stage] = []
    for line in lines:
        instruction, _, arguments = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            words = arguments.split()
            found.append(Stage(words[0], words[2] if len(words) > 2 and words[1].upper() == "AS" else None))
        else:
            found[-1].steps.append((instruction, " ".join(arguments.split())))
    return found


DOCKERFILE = stages((REPO / "Dockerfile").read_text())


def ignored(relpath: str, rules: list[str]) -> bool:
    """Whether ``.dockerignore``'s rules leave ``relpath`` out of the build context (the last
    matching rule wins; a rule matching a folder matches what is in it; ``**`` any folders)."""
    verdict = False
    parts = relpath.split("/")
    for rule in rules:
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").strip("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if fnmatch.fnmatchcase(prefix, pattern) or (
                pattern.startswith("**/") and fnmatch.fnmatchcase(parts[depth - 1], pattern[3:])
            ):
                verdict = not negate
                break
    return verdict


def context_files() -> list[str]:
    rules = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted(p for p in listed if (REPO / p).is_file() and not ignored(p, rules))


def test_a_multi_stage_build_on_a_slim_python_with_no_compiler_in_the_image() -> None:
    build, image = DOCKERFILE
    assert (build.base, build.name) == ("python:3.11-slim", "build")
    assert image.base == "python:3.11-slim"
    # the image gets the built environment, nothing of the build stage else, and installs nothing
    assert image.all("COPY")[0] == "--from=build /opt/venv /opt/venv"
    assert [step for step in image.all("COPY") if step.startswith("--from")] == ["--from=build /opt/venv /opt/venv"]
    for command in image.all("RUN"):
        assert not any(word in command for word in ("apt-get", "pip ", "gcc", "build-essential")), command


def test_the_image_agrees_with_the_manifests() -> None:
    image = DOCKERFILE[-1]
    assert image.one("USER") == f"{manifests.UID}:{manifests.UID}"
    assert f"--uid {manifests.UID}" in image.all("RUN")[0]
    assert image.one("WORKDIR") == manifests.WORKDIR
    assert f"mkdir {Path(DEFAULT_STORE).parent}" in " ".join(image.all("RUN"))
    assert image.one("EXPOSE") == str(PORT)
    assert image.one("STOPSIGNAL") == "SIGTERM"
    assert json.loads(image.one("ENTRYPOINT")) == ["fraiseql-check", "--watch"]
    assert json.loads(image.one("CMD")) == ["--listen", f"0.0.0.0:{PORT}"]
    deployment = yaml.safe_load((REPO / "deploy/kubernetes/base/deployment.yaml").read_text())
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == manifests.UID


def test_the_build_context_holds_what_the_dockerfile_copies_and_nothing_else() -> None:
    files = context_files()
    tops = {path.split("/", 1)[0] for path in files}
    assert tops == {"pyproject.toml", "README.md", "slos.yaml", "fraiseql_checks", "checks", "alerts", "dashboards"}
    assert not [p for p in files if "__pycache__" in p or p.endswith(".pyc")]
    for stage in DOCKERFILE:
        for copy in stage.all("COPY"):
            if copy.startswith("--from"):
                continue
            for source in copy.split()[:-1]:
                assert any(p == source.rstrip("/") or p.startswith(source.rstrip("/") + "/") for p in files), source
    assert ignored(".venv/bin/python", ["*", "!checks/"])
    assert not ignored("checks/health/check_db.py", ["*", "!checks/", "**/__pycache__"])
    assert ignored("checks/health/__pycache__/x.pyc", ["*", "!checks/", "**/__pycache__"])


class Emulated:
    """The Dockerfile's steps run on this machine: one folder stands for the image's root
    (both stages share it, so ``COPY --from=build /opt/venv /opt/venv`` is already done),
    absolute paths in commands point into it, ``python`` is this Python 3.11."""

    def __init__(self, root: Path, wheels: Path) -> None:
        self.wheels = wheels
        self.root = root
        self.workdir = root
        root.mkdir(parents=True)
        self.env: dict[str, str] = {}

    def path(self, path: str) -> Path:
        target = Path(path)
        return self.root / path.lstrip("/") if target.is_absolute() else self.workdir / path

    def copy(self, arguments: str, files: list[str]) -> None:
        *sources, destination = arguments.split()
        if sources[0].startswith("--from="):
            assert sources[1:] == [destination], "the emulation shares one root between the stages"
            return
        target = self.path(destination)
        for source in sources:
            name = source.rstrip("/")
            for relpath in files:
                if relpath != name and not relpath.startswith(name + "/"):
                    continue
                inner = relpath[len(name) :].lstrip("/")
                if (destination.endswith("/") and len(sources) > 1) or not inner:
                    out = target / Path(relpath).name if destination.endswith("/") else target
                else:
                    out = target / inner
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(REPO / relpath, out)

    def run(self, command: str) -> None:
        words = [str(self.path(w)) if w.startswith("/") else w for w in shlex.split(command)]
        if words[0] == "python":
            words[0] = sys._base_executable  # type: ignore[attr-defined]  # the interpreter under the venv
        if words[1:3] == ["install", str(self.path("/src"))] and words[0].endswith("/pip"):
            # the wheels fetched before the tests (validators.py): the test reaches no index
            words[2:2] = ["--no-index", "--find-links", str(self.wheels)]
        done = subprocess.run(words, cwd=self.workdir, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"

    def set_env(self, arguments: str) -> None:
        for pair in shlex.split(arguments):
            key, _, value = pair.partition("=")
            value = value.replace("$PATH", os.environ.get("PATH", ""))
            self.env[key] = ":".join(str(self.path(p)) if p.startswith("/opt/") else p for p in value.split(":"))


@pytest.mark.slow
def test_the_install_steps_give_a_watcher_that_answers_its_probes_and_stops_on_sigterm(
    checkdir: CheckDir, tmp_path: Path
) -> None:
    """The build stage's install steps, the image's copies, its environment and entry point,
    with the Deployment's arguments (on a loopback port here): the probes and /metrics answer,
    and the stop signal ends the watcher cleanly within the pod's grace period. (pip installs
    from the wheels ``validators.py`` fetched, not from the index.)"""
    wheels = wheelhouse()
    require(wheels.is_dir(), "the wheels of the image's install step are not fetched (tests/support/validators.py)")
    files = context_files()
    emulated = Emulated(tmp_path / "image", wheels)
    for stage in DOCKERFILE:
        for instruction, arguments in stage.steps:
            if instruction == "COPY":
                emulated.copy(arguments, files)
            elif instruction == "WORKDIR":
                emulated.workdir = emulated.path(arguments)
                emulated.workdir.mkdir(parents=True, exist_ok=True)
            elif instruction == "RUN" and stage.name == "build":
                emulated.run(arguments)
            elif instruction == "ENV" and stage is DOCKERFILE[-1]:
                emulated.set_env(arguments)
    image = DOCKERFILE[-1]
    deployment = yaml.safe_load((REPO / "deploy/kubernetes/base/deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    port = free_port()
    args = [a.replace(f"0.0.0.0:{PORT}", f"127.0.0.1:{port}") for a in container["args"]]
    env = checkdir.env(**emulated.env, **{e["name"]: e["value"] for e in container["env"] if "value" in e})
    command = json.loads(image.one("ENTRYPOINT")) + args
    executable = shutil.which(command[0], path=env["PATH"])
    assert executable is not None and executable.startswith(str(emulated.root)), executable
    process = subprocess.Popen(
        [executable, *command[1:]],
        cwd=emulated.workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def answers(path: str) -> bytes | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
                    return bytes(response.read()) if response.status == 200 else None
            except (urllib.error.URLError, OSError):
                assert process.poll() is None, process.communicate()[0]
                return None

        probes = container["livenessProbe"]["httpGet"]["path"], container["readinessProbe"]["httpGet"]["path"]
        for path in probes:
            wait_until(lambda path=path: answers(path), timeout=60, what=path)
        metrics_path = yaml.safe_load((REPO / "deploy/kubernetes/base/servicemonitor.yaml").read_text())["spec"][
            "endpoints"
        ][0]["path"]
        metrics = wait_until(lambda: answers(metrics_path), timeout=30, what=metrics_path)
        assert b"fraiseql_check_info{" in metrics  # type: ignore[operator]  # every scheduled check
        assert (emulated.workdir / DEFAULT_STORE).exists()  # the store where the emptyDir is mounted
        process.send_signal(getattr(signal, image.one("STOPSIGNAL")))
        output, _ = process.communicate(timeout=pod["terminationGracePeriodSeconds"])
        assert process.returncode == 0, output
        assert "stopped after" in output
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
