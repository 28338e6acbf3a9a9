"""The config's stash: typed keys, each its own, and the mapping operations plugins use."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraiseql_checks.stash import Stash, StashKey

COUNT = StashKey[int]("count")
NAMES = StashKey[list[str]]("names")


def test_a_value_comes_back_under_its_key() -> None:
    stash = Stash()
    stash[COUNT] = 3
    stash[NAMES] = ["a"]
    assert stash[COUNT] == 3 and stash[NAMES] == ["a"]
    assert COUNT in stash and len(stash) == 2


def test_keys_with_the_same_name_are_different_keys() -> None:
    stash = Stash()
    mine, theirs = StashKey[int]("count"), StashKey[int]("count")
    stash[mine] = 1
    stash[theirs] = 2
    assert (stash[mine], stash[theirs], stash.get(COUNT)) == (1, 2, None)


def test_a_missing_key_is_a_key_error_naming_it() -> None:
    stash = Stash()
    with pytest.raises(KeyError, match="<StashKey count>"):
        stash[COUNT]
    with pytest.raises(KeyError):
        del stash[COUNT]
    assert repr(StashKey[int]()).startswith("<StashKey 0x")


def test_get_setdefault_delete_and_pop() -> None:
    stash = Stash()
    assert stash.get(COUNT) is None and stash.get(COUNT, 0) == 0
    assert stash.setdefault(NAMES, []) == []
    stash.setdefault(NAMES, ["ignored"]).append("kept")
    assert stash[NAMES] == ["kept"]
    del stash[NAMES]
    assert NAMES not in stash
    stash[COUNT] = 5
    assert stash.pop(COUNT) == 5 and stash.pop(COUNT, None) is None
    with pytest.raises(KeyError):
        stash.pop(COUNT)


def test_the_config_keeps_a_stash_with_the_command_line(tmp_path: Path) -> None:
    from fraiseql_checks.cli import ARGS_KEY, configure

    config, _ = configure(["-q", "checks"], invocation_dir=tmp_path)
    assert isinstance(config.stash, Stash) and config.stash[ARGS_KEY] == ["-q", "checks"]
