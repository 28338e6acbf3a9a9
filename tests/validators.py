"""Fetch the third-party validators the tests use into ``.cache/validators``.

Run by ``scripts/test`` before pytest, so that the tests themselves never reach
the network. Each validator comes from its publisher (VALIDATORS.md):

- ``junit-10.xsd``: from the sdist of the installed pytest (pytest's own tests
  validate JUnit XML against it).
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "validators"


def junit_xsd() -> Path:
    return CACHE / "junit-10.xsd"


def fetch_junit_xsd() -> None:
    target = junit_xsd()
    if target.exists():
        return
    import pytest

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-binary",
                ":all:",
                "--no-deps",
                f"pytest=={pytest.__version__}",
                "-d",
                tmp,
            ],
            check=True,
        )
        (sdist,) = Path(tmp).glob("pytest-*.tar.gz")
        with tarfile.open(sdist) as archive:
            member = next(m for m in archive.getmembers() if m.name.endswith("/junit-10.xsd"))
            data = archive.extractfile(member)
            assert data is not None
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data.read())


def main() -> None:
    fetch_junit_xsd()
    print(f"validators ready in {CACHE}")


if __name__ == "__main__":
    main()
