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
import hashlib
import importlib.util
import marshal
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

#: The header of a cache file: code objects depend on the interpreter's bytecode.
_HEADER = importlib.util.MAGIC_NUMBER
#: Below this many asserts to rewrite (0.3-0.8 ms each), a helper, which takes ~0.25 s to
#: start (pytest's rewriter is most of it), saves too little to be worth its CPU.
PARALLEL_ASSERTS = 1500
#: At most this many helpers, whatever the cores.
MAX_HELPERS = 3
#: Helpers still running, kept so that none is reported as leaked by the interpreter.
_helpers: list[subprocess.Popen[bytes]] = []  # subprocess, json and signal: imported on a cold start only


def cache_file(folder: Path, path: Path, source: bytes) -> Path:
    """Where the rewritten code of ``source`` (the file ``path``) is kept in ``folder``."""
    digest = hashlib.blake2b(source + str(path).encode(), digest_size=16).hexdigest()
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

    def code(self, path: Path) -> CodeType:
        source = path.read_bytes()
        if not self.rewrite:  # --assert=plain
            return compile(source, str(path), "exec", dont_inherit=True)
        if self.folder is None:
            return rewritten(source, path)
        cache = cache_file(self.folder, path, source)
        code = load(cache)
        if code is None:
            code = rewritten(source, path)
            store(cache, code)
        return code

    def prepare(self, paths: Sequence[Path]) -> int:
        """Before collecting ``paths`` (in that order): start helpers when the files not
        cached yet hold at least ``PARALLEL_ASSERTS`` asserts and there are cores to
        spare; how many started."""
        helpers = min((os.cpu_count() or 1) - 1, MAX_HELPERS)
        if self.folder is None or not self.rewrite or helpers < 1:
            return 0
        missing: list[Path] = []
        asserts = 0
        for path in paths:
            try:
                source = path.read_bytes()
            except OSError:
                continue  # collection says why
            if not cache_file(self.folder, path, source).exists():
                missing.append(path)
                asserts += source.count(b"assert")
        if asserts < PARALLEL_ASSERTS or len(missing) < 2:
            return 0
        helpers = min(helpers, len(missing) - 1)
        size = -(-len(missing) // (helpers + 1))  # collection's part comes first
        started = 0
        for start in range(size, len(missing), size):
            part = missing[start : start + size]
            started += self._start_helper(list(reversed(part)))  # back to front: collection comes from the front
        return started

    def _start_helper(self, paths: list[Path]) -> int:
        import json
        import subprocess

        assert self.folder is not None
        job = json.dumps({"folder": str(self.folder), "paths": [str(p) for p in paths]}).encode()
        try:
            helper = subprocess.Popen(
                [sys.executable, "-m", "fraiseql_checks.core.rewrite_cache"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            assert helper.stdin is not None
            helper.stdin.write(job)
            helper.stdin.close()
        except OSError:
            return 0  # no helper: collection rewrites everything itself, as without one
        _helpers.append(helper)
        return 1

    def finish(self) -> None:
        """Collection is over: the helpers stop (a file they are writing is finished first)."""
        if not _helpers:
            return
        import signal

        for helper in _helpers:
            if helper.poll() is None:
                with contextlib.suppress(OSError):
                    helper.send_signal(signal.SIGTERM)
        _helpers[:] = [helper for helper in _helpers if helper.poll() is None]


def _help() -> None:
    """A helper: rewrite the files of the job on standard input that are not cached yet."""
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
    job = json.loads(sys.stdin.buffer.read())
    folder = Path(job["folder"])
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
