"""Headless Chromium for tests: Debian's ``/usr/bin/chromium`` driven by the ``playwright`` package.

Playwright's own browser downloads are never used (the machine has no internet):
``executable_path`` points at the system Chromium, started with the flags of
VALIDATORS.md. A missing Chromium or playwright skips loudly (fails under CI=true).
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tests.support.services import require

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    require(found is not None, "chromium is not installed (apt-get install -y chromium)")
    assert found is not None
    return found


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """A started headless Chromium, closed after."""
    executable = chromium_path()
    require(
        importlib.util.find_spec("playwright") is not None, "playwright is not installed (pip install -e '.[test]')"
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_FLAGS), headless=True)
        try:
            yield browser
        finally:
            browser.close()
