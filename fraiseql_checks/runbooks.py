"""Runbook links: one base URL (``notify.runbook_base_url``), one way to join a path to it.

Alert rules, SLO rules, dashboards and notifications all link a check's runbook with
``runbook_link``: a runbook that is already a URL (any scheme: ``https:``, ``file:``,
a wiki's own) stays as it is; a path is joined to the base when one is set, and left a
path (relative to the repository) when not.
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fraiseql_checks.config import Config

#: Where the base lives in the config: ``notify.runbook_base_url``.
SECTION = "notify"
BASE_URL = "runbook_base_url"
BASE_URL_ENV = "FRAISEQL_CHECKS_RUNBOOK_BASE_URL"


def runbook_link(runbook: str | None, base: str = "") -> str | None:
    """``runbook`` as a link: a URL as it is, a path under ``base`` (or the path alone)."""
    if not runbook:
        return None
    if urllib.parse.urlsplit(runbook).scheme or not base:
        return runbook
    return f"{base.rstrip('/')}/{runbook.lstrip('/')}"


def runbook_base_url(config: Config) -> str:
    """The configured base URL, ``""`` when none is set (or the notify plugin is disabled)."""
    try:
        return str(config.get(SECTION).get(BASE_URL) or "")
    except KeyError:
        return ""
