"""docs/notifications.md documents every key of every built-in receiver type."""

from __future__ import annotations

import re

from fraiseql_checks._plugins import create_pluginmanager
from fraiseql_checks.notify.notifier import Notifiers
from tests.support import REPO


def sections() -> dict[str, str]:
    text = (REPO / "docs" / "notifications.md").read_text(encoding="utf-8")
    parts = re.split(r"^### ", text, flags=re.MULTILINE)[1:]
    return {part.split("\n", 1)[0].split(":")[0].strip().lower(): part for part in parts}


def test_every_key_of_every_receiver_type_is_in_its_section_of_the_doc() -> None:
    types = Notifiers()
    create_pluginmanager(autoload=False).hook.fraiseql_add_notifiers.call_historic(kwargs={"notifiers": types})
    documented = sections()
    assert set(types.names()) <= set(documented), sorted(set(types.names()) - set(documented))
    for name in types.names():
        section = documented[name]
        notifier = types.get(name)
        assert notifier is not None
        missing = [
            s.name for s in notifier.cls.settings if f"`{s.name}`" not in section and f"{s.name}:" not in section
        ]
        assert missing == [], f"{name}: {missing}"
        assert f"type: {name}" in section, f"{name}: no copy-paste config"
