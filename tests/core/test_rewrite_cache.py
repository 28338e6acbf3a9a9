"""The cache of rewritten check modules, and the helper processes that fill it on a cold start."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from fraiseql_checks.core import rewrite_cache
from fraiseql_checks.core.rewrite_cache import PARALLEL_ASSERTS, RewriteCache, cache_file, load, rewritten
from tests.support.checkdir import CheckDir

FEW = 40


def write_files(folder: Path, files: int, asserts: int) -> list[Path]:
    """``files`` check files of ``asserts`` asserts each, in collection order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(files):
        path = folder / f"check_part_{index}.py"
        path.write_text("".join(f"def check_{index}_{n}():\n    assert {n} + 1 == {n + 1}\n\n" for n in range(asserts)))
        paths.append(path)
    return paths


@pytest.fixture(autouse=True)
def few_asserts_suffice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Helpers start from ``FEW`` asserts here (small files, quick tests), not ``PARALLEL_ASSERTS``."""
    monkeypatch.setattr(rewrite_cache, "PARALLEL_ASSERTS", FEW)


def wait_for_helpers() -> None:
    for helper in rewrite_cache._helpers:
        helper.wait(60)
    rewrite_cache._helpers.clear()


def test_a_helper_rewrites_the_last_part_as_collection_would(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two cores: one helper takes the second half of the files not cached yet; what it
    writes is what collection would have written, read back as the same code."""
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    paths = write_files(tmp_path / "checks", 4, FEW // 2)
    cache = RewriteCache(tmp_path / "cache")
    assert cache.prepare(paths) == 1
    wait_for_helpers()
    sources = {path: path.read_bytes() for path in paths}
    cached = {path.name for path in paths if cache_file(tmp_path / "cache", path, sources[path]).exists()}
    assert cached == {"check_part_2.py", "check_part_3.py"}  # collection's part (the first half) is left to it
    for path in paths[2:]:
        helper_code = load(cache_file(tmp_path / "cache", path, sources[path]))
        assert helper_code is not None
        assert helper_code == rewritten(sources[path], path)  # the same bytecode, constants and names
        assert cache.code(path) is not None  # collection reads it as its own
    assert not [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".pyc")]  # no half-written file


@pytest.mark.parametrize(
    ("cores", "files", "asserts", "helpers"),
    [
        (2, 4, FEW // 4 - 1, 0),  # too few asserts to pay for a helper
        (1, 4, FEW, 0),  # no core to spare
        (2, 1, FEW * 2, 0),  # one file: nothing to share
        (8, 3, FEW, 2),  # never more helpers than parts beside collection's
    ],
)
def test_helpers_start_only_when_they_pay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cores: int, files: int, asserts: int, helpers: int
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    paths = write_files(tmp_path / "checks", files, asserts)
    assert RewriteCache(tmp_path / "cache").prepare(paths) == helpers
    wait_for_helpers()


def test_no_helper_without_a_cache_or_a_rewrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    paths = write_files(tmp_path / "checks", 4, FEW)
    assert RewriteCache(None).prepare(paths) == 0
    assert RewriteCache(tmp_path / "cache", rewrite=False).prepare(paths) == 0
    for path in paths:  # cached already: nothing to do
        RewriteCache(tmp_path / "cache").code(path)
    assert RewriteCache(tmp_path / "cache").prepare(paths) == 0


def test_a_stopped_helper_leaves_no_half_written_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``finish`` (collection is over) stops a helper after the file it is writing."""
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    paths = write_files(tmp_path / "checks", 40, FEW)
    cache = RewriteCache(tmp_path / "cache")
    assert cache.prepare(paths) == 1
    helper = rewrite_cache._helpers[0]
    cache.finish()
    assert helper.wait(60) in (0, -signal.SIGTERM)  # stopped as it went, or before it began
    rewrite_cache._helpers.clear()
    written = list((tmp_path / "cache").iterdir()) if (tmp_path / "cache").exists() else []
    assert all(p.name.endswith(".pyc") for p in written)
    assert len(written) < 20  # it stopped before the end of its part


def test_a_file_that_does_not_rewrite_is_left_to_collection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    paths = write_files(tmp_path / "checks", 4, FEW // 2)
    paths[3].write_text("def check_broken(:\n    assert True\n" + "assert 1\n" * FEW)
    cache = RewriteCache(tmp_path / "cache")
    assert cache.prepare(paths) == 1
    wait_for_helpers()
    assert not cache_file(tmp_path / "cache", paths[3], paths[3].read_bytes()).exists()
    assert cache_file(tmp_path / "cache", paths[2], paths[2].read_bytes()).exists()  # the helper went on


def test_a_cold_run_with_helpers_reports_asserts_as_a_warm_one(checkdir: CheckDir) -> None:
    """Enough asserts for helpers on a machine with cores to spare: a failing assert in
    the last file (a helper's, where there is one) is explained as pytest explains it, cold and warm."""
    write_files(checkdir.path / "checks", 5, PARALLEL_ASSERTS // 4)
    checkdir.write("checks/check_zz_last.py", "def check_lists():\n    assert [1, 2, 3] == [1, 2, 4]\n")
    runs = []
    for _ in ("cold", "warm"):
        result, report = checkdir.run_json()
        assert result.ret == 1
        runs.append({r["name"]: (r["outcome"], r["message"]) for r in report["results"] if r["outcome"] != "passed"})
        assert sum(r["outcome"] == "passed" for r in report["results"]) == 5 * (PARALLEL_ASSERTS // 4)
    assert runs[0] == runs[1]
    outcome, message = runs[0]["check_lists"]
    assert outcome == "failed"
    assert message.startswith("assert [1, 2, 3] == [1, 2, 4]")
    assert "At index 2 diff: 3 != 4" in message
