"""The cache of rewritten check modules, and the helper processes that fill it on a cold start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fraiseql_checks.core import rewrite_cache
from fraiseql_checks.core.rewrite_cache import PARALLEL_ASSERTS, RewriteCache, cache_file, load, rewritten
from tests.support.checkdir import CheckDir
from tests.support.services import wait_until

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
def few_asserts_suffice(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Helpers start from ``FEW`` asserts here (small files, quick tests), not
    ``PARALLEL_ASSERTS``; no helper outlives its test."""
    monkeypatch.setattr(rewrite_cache, "PARALLEL_ASSERTS", FEW)
    yield
    for helper, _ in rewrite_cache._helpers:
        helper.kill()
        helper.wait()
    rewrite_cache._helpers.clear()


def cores(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    monkeypatch.setattr(rewrite_cache, "_cores", lambda: count)


def wait_for_helpers() -> None:
    for helper, _ in rewrite_cache._helpers:
        assert helper.wait(60) == 0
    rewrite_cache._helpers.clear()


def test_a_helper_rewrites_the_last_part_as_collection_would(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two cores: one helper takes the second half of the files not cached yet; what it
    writes is what collection would have written, read back as the same code."""
    cores(monkeypatch, 2)
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
    assert not [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".pyc")]  # nor job, nor temp


@pytest.mark.parametrize(
    ("count", "files", "asserts", "helpers"),
    [
        (2, 4, FEW // 4 - 1, 0),  # too few asserts to pay for a helper
        (1, 4, FEW, 0),  # no core to spare
        (2, 1, FEW * 2, 0),  # one file: nothing to share
        (8, 3, FEW, 2),  # never more helpers than parts beside collection's
    ],
)
def test_helpers_start_only_when_they_pay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int, files: int, asserts: int, helpers: int
) -> None:
    cores(monkeypatch, count)
    paths = write_files(tmp_path / "checks", files, asserts)
    assert RewriteCache(tmp_path / "cache").prepare(paths) == helpers
    wait_for_helpers()


def test_no_helper_without_a_cache_or_a_rewrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cores(monkeypatch, 4)
    paths = write_files(tmp_path / "checks", 4, FEW)
    assert RewriteCache(None).prepare(paths) == 0
    assert RewriteCache(tmp_path / "cache", rewrite=False).prepare(paths) == 0
    for path in paths:  # cached already: nothing to do
        RewriteCache(tmp_path / "cache").code(path)
    assert RewriteCache(tmp_path / "cache").prepare(paths) == 0


def test_a_stopped_helper_leaves_no_half_written_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``finish`` (collection is over) stops a helper at work: a file it is writing is
    finished, a rewrite under way dropped; it is reaped, and its job file is gone."""
    cores(monkeypatch, 2)
    paths = write_files(tmp_path / "checks", 40, FEW * 5)
    cache = RewriteCache(tmp_path / "cache")
    assert cache.prepare(paths) == 1
    ((helper, job),) = rewrite_cache._helpers
    wait_until(lambda: any(p.suffix == ".pyc" for p in (tmp_path / "cache").iterdir()), 60, what="a first file")
    cache.finish()
    assert helper.returncode == 0  # reaped: no zombie
    assert rewrite_cache._helpers == []
    written = [p.name for p in (tmp_path / "cache").iterdir()]
    assert all(name.endswith(".pyc") for name in written), written
    assert 1 <= len(written) < 20  # it stopped before the end of its part
    assert not Path(job).exists()


def test_a_helper_of_another_version_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A helper checks it would write what this run writes (same tag, same -O), else leaves it all to the run."""
    cores(monkeypatch, 2)
    monkeypatch.setattr(rewrite_cache, "CACHE_TAG", "cpython-311-fraiseql-checks-0.0.0")
    paths = write_files(tmp_path / "checks", 4, FEW)
    assert RewriteCache(tmp_path / "cache").prepare(paths) == 1
    wait_for_helpers()
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_worker_of_watch_mode_starts_no_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cores(monkeypatch, 4)
    cache = RewriteCache(tmp_path / "cache")
    cache.parallel = False
    assert cache.prepare(write_files(tmp_path / "checks", 4, FEW)) == 0


def test_a_file_name_that_does_not_encode_is_no_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cores(monkeypatch, 2)
    paths = write_files(tmp_path / "checks", 4, FEW)
    odd = tmp_path / "checks" / "check_caf\udce9.py"  # a byte that is not UTF-8, as os.listdir gives it
    odd.write_text("def check_odd():\n    assert True\n")
    cache = RewriteCache(tmp_path / "cache")
    assert cache.prepare([*paths, odd]) == 1
    wait_for_helpers()
    assert cache.code(odd) is not None


def test_a_file_that_does_not_rewrite_is_left_to_collection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cores(monkeypatch, 2)
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
