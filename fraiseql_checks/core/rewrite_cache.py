"""Rewritten code of check modules and conftests, cached by content; on a cold start,
helper processes fill the cache beside the collection.

pytest's assertion rewriter costs 0.3-1 ms per ``assert`` (walking and relocating the
nodes it writes), fifty times what compiling the same file costs. A warm run reads the
cache; a cold one (a fresh clone in CI) pays the rewriter for every file. When the
files not cached yet hold many asserts, ``RewriteCache.prepare`` starts one helper
process per further core (``python -m fraiseql_checks.core.rewrite_cache``): the
files are cut into parts, collection takes the first part front to back, and each helper
its own part back to front. Collection reads what a helper wrote as it reaches it, and
rewrites itself what no helper has done yet, so no file waits for a helper and each
file is rewritten about once; a helper stops once collection is over.

A helper only parses and compiles: it imports no check file. It computes each cache
name from the source it read itself, so a file edited meanwhile is never cached under
its old content.
"""

from __future__ import annotations

import contextlib
import importlib.util
import marshal
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING

from fraiseql_checks._version import __version__
from fraiseql_checks.core._pytest_compat import PYTEST_VERSION, REWRITE_FORMAT

if TYPE_CHECKING:
    import subprocess

#: The header of a cache file: code objects depend on the interpreter's bytecode.
_HEADER = importlib.util.MAGIC_NUMBER
#: Rewritten code depends on the interpreter, on us and on pytest's rewriter (the cache's folder).
CACHE_TAG = (
    f"{sys.implementation.cache_tag}-fraiseql-checks-{__version__}-pytest-{PYTEST_VERSION}-rewrite-{REWRITE_FORMAT}"
)
#: Below this many asserts to rewrite (0.3-0.8 ms each), a helper, which takes ~0.25 s to
#: start (pytest's rewriter is most of it), saves too little to be worth its CPU.
PARALLEL_ASSERTS = 1500
#: At most this many helpers, whatever the cores.
MAX_HELPERS = 3
#: Helpers started and their job files, until ``finish`` reaps them (subprocess, json,
#: signal and tempfile are imported on a cold start only).
_helpers: list[tuple[subprocess.Popen[bytes], str]] = []


try:  # hashlib's own blake2b, without importing hashlib (which loads OpenSSL: ~1.3 ms a start)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - a Python built without its own blake2
    from hashlib import blake2b


def cache_file(folder: Path, path: Path, source: bytes) -> Path:
    """Where the rewritten code of ``source`` (the file ``path``) is kept in ``folder``."""
    digest = blake2b(source + os.fsencode(path), digest_size=16).hexdigest()
    return folder / f"{path.stem}-{digest}.pyc"


def load(cache: Path) -> CodeType | None:
    """The code kept in ``cache``; ``None`` when it is missing or unreadable."""
    try:
        data = cache.read_bytes()
    except OSError:
        return None
    if data[:4] != _HEADER:
        return None
    try:
        code = marshal.loads(data[4:])
    except (EOFError, ValueError, TypeError):
        return None
    return code if isinstance(code, CodeType) else None


def store(cache: Path, code: CodeType) -> None:
    """Keep ``code`` in ``cache`` (whole or not at all: written aside, then renamed)."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        temp = cache.with_name(f"{cache.name}.{os.getpid()}")
        temp.write_bytes(_HEADER + marshal.dumps(code))
        os.replace(temp, cache)
    except OSError:
        pass  # a read-only tree still runs, just without the cache


def rewritten(source: bytes, path: Path) -> CodeType:
    from fraiseql_checks.core._pytest_compat import rewrite_module

    return rewrite_module(source, str(path))


def _cores() -> int:
    """The cores this process may run on (its affinity, where the platform tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class RewriteCache:
    """Rewritten code of check modules and conftests, keyed by the source's content.

    The cache makes every run after the first skip pytest's rewriter. It lives in the
    tool's state folder (like ``.pytest_cache``), so it works where
    ``PYTHONDONTWRITEBYTECODE`` is set and in a fresh clone of an unchanged tree;
    ``None`` as folder disables it.
    """

    def __init__(self, folder: Path | None, rewrite: bool = True) -> None:
        self.folder = folder
        self.rewrite = rewrite
        #: Whether a cold start may start helpers (watch mode's workers collect side by side
        #: already, one per core: they do not).
        self.parallel = True
        #: What ``prepare`` read, for ``code`` to use once: each file is read and hashed once.
        self._read: dict[Path, tuple[bytes, Path]] = {}

    def code(self, path: Path) -> CodeType:
        known = self._read.pop(path, None)
        source = path.read_bytes() if known is None else known[0]
        if not self.rewrite:  # --assert=plain
            return compile(source, str(path), "exec", dont_inherit=True)
        if self.folder is None:
            return rewritten(source, path)
        cache = cache_file(self.folder, path, source) if known is None else known[1]
        code = load(cache)
        if code is None:
            code = rewritten(source, path)
            store(cache, code)
        return code

    def prepare(self, paths: Sequence[Path]) -> int:
        """Before collecting ``paths`` (in that order): start helpers when the files not
        cached yet hold at least ``PARALLEL_ASSERTS`` asserts and there are cores to
        spare; how many started. Only a speed-up: whatever goes wrong, collection does it all."""
        if self.folder is None or not self.rewrite or not self.parallel or getattr(sys, "frozen", False):
            return 0
        helpers = min(_cores() - 1, MAX_HELPERS)
        if helpers < 1:
            return 0
        try:
            return self._share(self.folder, paths, helpers)
        except Exception:  # a file name that does not encode, a folder not writable...
            return 0

    def _share(self, folder: Path, paths: Sequence[Path], helpers: int) -> int:
        missing: list[Path] = []
        asserts = 0
        for path in paths:
            try:
                source = path.read_bytes()
            except OSError:
                continue  # collection says why
            cache = cache_file(folder, path, source)
            self._read[path] = (source, cache)
            if not cache.exists():
                missing.append(path)
                asserts += source.count(b"assert")
        if asserts < PARALLEL_ASSERTS or len(missing) < 2:
            return 0
        helpers = min(helpers, len(missing) - 1)
        size = -(-len(missing) // (helpers + 1))  # collection's part comes first
        started = 0
        for start in range(size, len(missing), size):
            part = missing[start : start + size]
            started += _start_helper(folder, list(reversed(part)))  # back to front: collection comes from the front
        return started

    def finish(self) -> None:
        """Collection is over: the helpers stop (a file they are writing is finished first)."""
        self._read.clear()  # files collection did not reach (a name selected none of theirs...)
        if not _helpers:
            return
        import signal
        import subprocess

        for helper, _ in _helpers:
            if helper.poll() is None:
                with contextlib.suppress(OSError):
                    helper.send_signal(signal.SIGTERM)
        for helper, job in _helpers:  # they end within milliseconds; none is left a zombie
            try:
                helper.wait(1.0)
            except subprocess.TimeoutExpired:  # stuck in C code: it was not writing, nothing is half-written
                helper.kill()
                helper.wait()
            with contextlib.suppress(OSError):
                os.unlink(job)  # a helper stopped before it read its job
        _helpers.clear()


def _start_helper(folder: Path, paths: list[Path]) -> int:
    """Start a helper on ``paths``; 1 if it started. The job goes in a file (a pipe's buffer
    could make collection wait for the helper to start and read it)."""
    import json
    import subprocess
    import tempfile

    folder.mkdir(parents=True, exist_ok=True)
    job = {"tag": CACHE_TAG, "optimize": sys.flags.optimize, "paths": [os.fsdecode(p) for p in paths]}
    with tempfile.NamedTemporaryFile("w", dir=folder, prefix="job-", suffix=".json", delete=False) as handle:
        json.dump(job, handle)
    # -P: the working directory does not come first on sys.path (another checkout of the
    # tool there would write code of its own here); -O as this process was started
    optimize = ["-" + "O" * sys.flags.optimize] if sys.flags.optimize else []
    try:
        helper = subprocess.Popen(
            [sys.executable, "-P", *optimize, "-m", "fraiseql_checks.core.rewrite_cache", handle.name],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(handle.name)
        return 0  # no helper: collection rewrites everything itself, as without one
    _helpers.append((helper, handle.name))
    return 1


def _help() -> None:
    """A helper: rewrite the files of its job (the file named on its command line, in
    the cache's folder) that are not cached yet."""
    import json
    import signal

    stopping = storing = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        if not storing:
            os._exit(0)  # nothing is half-written: a rewrite under way is only dropped
        stopping = True  # once this file is whole

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the run; it stops us with SIGTERM
    job_file = Path(sys.argv[1])
    job = json.loads(job_file.read_text())
    job_file.unlink()
    if job["tag"] != CACHE_TAG or job["optimize"] != sys.flags.optimize:
        return  # not the code the run would write: leave it all to the run
    folder = job_file.parent
    for name in job["paths"]:
        path = Path(name)
        try:
            source = path.read_bytes()
            cache = cache_file(folder, path, source)
            if cache.exists():
                continue  # collection got there first
            code = rewritten(source, path)
        except Exception:  # a file that does not rewrite: collection reports it
            continue
        storing = True
        store(cache, code)
        storing = False
        if stopping:
            break


if __name__ == "__main__":
    _help()
