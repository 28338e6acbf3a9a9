"""Test helpers: the check folder, fake servers, service launchers, validators."""

from __future__ import annotations

from pathlib import Path

#: The repository's root.
REPO = Path(__file__).resolve().parents[2]
#: Recorded test data (each folder names its source).
DATA = REPO / "tests" / "data"
