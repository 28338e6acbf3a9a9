"""Message templates: Jinja2, HTML autoescaped, overridable.

The built-in templates are ``notify/templates/text.txt.j2`` (email text part,
webhook ``text``, chat fallbacks) and ``html.html.j2`` (email HTML part). A folder
named by ``notify.templates`` is searched first, so a file of the same name there
replaces one; a template sees ``message`` (``notify.message.Message``) and the
``when`` filter (an epoch time as UTC ISO 8601).
"""

from __future__ import annotations

import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jinja2

    from fraiseql_checks.notify.message import Message

BUILT_IN = Path(__file__).parent / "templates"
TEXT = "text.txt.j2"
HTML = "html.html.j2"


def when(epoch: float | None) -> str:
    if not epoch:
        return ""
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


@lru_cache(maxsize=8)
def environment(folder: str | None = None) -> jinja2.Environment:
    """The templates: ``folder``'s first (``notify.templates``), then the built-in ones.
    (jinja2 is imported at the first notification, not at every start of the tool.)"""
    import jinja2

    loaders: list[jinja2.BaseLoader] = []
    if folder:
        loaders.append(jinja2.FileSystemLoader(folder))
    loaders.append(jinja2.FileSystemLoader(str(BUILT_IN)))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2", "htm"), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        keep_trailing_newline=False,
    )
    env.filters["when"] = when
    return env


def render(name: str, message: Message, folder: str | None = None) -> str:
    """Template ``name`` filled with ``message``; ``ValueError`` saying which template broke."""
    import jinja2

    try:
        return environment(folder).get_template(name).render(message=message).strip() + "\n"
    except jinja2.TemplateError as exc:
        raise ValueError(f"template {name}: {type(exc).__name__}: {exc}") from None


def text(message: Message, folder: str | None = None) -> str:
    return render(TEXT, message, folder)


def html(message: Message, folder: str | None = None) -> str:
    return render(HTML, message, folder)
