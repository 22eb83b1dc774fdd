"""Hashed API keys (pdp.auth.keys; AuthZEN 1.0 section 10): entries, rotation, files, and that
no other key matches."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pdp.auth.keys import (
    ApiKeySet,
    KeysFile,
    entry_for,
    hash_key,
    new_key,
    parse_entries,
    read_entries_file,
)

OLD, NEW, OTHER = new_key(), new_key(), new_key()


def test_a_new_key_is_a_random_43_character_token() -> None:
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100 and all(len(k) == 43 for k in keys)


def test_an_entry_holds_the_name_and_the_sha256_of_the_key_never_the_key() -> None:
    entry = entry_for("gateway-a", OLD)
    assert entry == f"gateway-a=sha256:{hashlib.sha256(OLD.encode()).hexdigest()}"
    assert OLD not in entry
    assert hash_key(OLD) == entry.partition("=")[2]


def test_both_keys_of_a_rotation_match_and_a_removed_one_no_longer_does() -> None:
    rotating = ApiKeySet(parse_entries([entry_for("gw", OLD), entry_for("gw", NEW)]))
    assert rotating.match(OLD) == "gw" and rotating.match(NEW) == "gw"
    rotated = ApiKeySet(parse_entries([entry_for("gw", NEW)]))
    assert rotated.match(OLD) is None and rotated.match(NEW) == "gw"


def test_each_key_authenticates_as_its_own_name() -> None:
    keys = ApiKeySet(parse_entries([entry_for("a", OLD), entry_for("b", NEW)]))
    assert (keys.match(OLD), keys.match(NEW), keys.match(OTHER)) == ("a", "b", None)


@pytest.mark.parametrize("entry", [
    "gateway",                                     # no hash
    f"gateway={OLD}",                              # a plain key is never accepted
    "gateway=sha256:abcd",                         # too short
    "gateway=md5:" + "0" * 32,                     # another algorithm
    "=sha256:" + "0" * 64,                         # no name
    "a b=sha256:" + "0" * 64,                      # a name with a space
])
def test_malformed_entries_are_refused_without_echoing_a_key(entry: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_entries([entry], source="PDP_API_KEYS")
    assert "PDP_API_KEYS" in str(refused.value)
    assert OLD not in str(refused.value)


def test_one_key_under_two_names_is_refused() -> None:
    with pytest.raises(ValueError, match="both"):
        parse_entries([entry_for("a", OLD), entry_for("b", OLD)])


def test_a_keys_file_has_one_entry_per_line_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# PEPs\n{entry_for('a', OLD)}\n\n{entry_for('b', NEW)}  # since May\n")
    keys = ApiKeySet(parse_entries(read_entries_file(path)))
    assert keys.match(OLD) == "a" and keys.match(NEW) == "b"
    with pytest.raises(ValueError, match="cannot be read"):
        read_entries_file(tmp_path / "missing")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_keys_file_is_followed_as_it_changes_once_per_interval(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(entry_for("gw", OLD) + "\n")
    clock = Clock()
    keys = KeysFile(parse_entries([entry_for("fixed", OTHER)]), path, interval=1.0, clock=clock)
    assert keys.current().match(OLD) == "gw" and keys.current().match(OTHER) == "fixed"

    path.write_text(entry_for("gw", OLD) + "\n" + entry_for("gw", NEW) + "  # rotating\n")
    clock.now = 0.5
    assert keys.current().match(NEW) is None  # not yet looked at
    clock.now = 1.0
    assert keys.current().match(NEW) == "gw" and keys.current().match(OLD) == "gw"

    path.write_text(entry_for("gw", NEW) + "\n")  # the old key revoked
    clock.now = 2.0
    assert keys.current().match(OLD) is None
    assert keys.current().match(NEW) == "gw" and keys.current().match(OTHER) == "fixed"


def test_a_broken_keys_file_keeps_the_keys_in_force_and_says_so(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "keys"
    path.write_text(entry_for("gw", OLD) + "\n")
    clock = Clock()
    admin = ApiKeySet(parse_entries([entry_for("ops", OTHER)]))
    keys = KeysFile((), path, interval=1.0, clock=clock, conflicts=admin)
    for n, broken in enumerate([f"gw={OLD}\n",  # a plain key, not its hash
                                entry_for("gw", OTHER) + "\n"], 1):  # an admin's key
        path.write_text(broken)
        clock.now = float(n)
        with caplog.at_level("ERROR", logger="pdp.auth"):
            assert keys.current().match(OLD) == "gw"
        assert keys.current().match(OTHER) is None
        assert "not reloaded" in caplog.text and OLD not in caplog.text
        caplog.clear()
    path.unlink()
    clock.now = 10.0
    assert keys.current().match(OLD) == "gw"


def test_a_bad_keys_file_at_start_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("gw=plain-key\n")
    with pytest.raises(ValueError, match="sha256"):
        KeysFile((), path, interval=1.0)
    with pytest.raises(ValueError, match="cannot be read"):
        KeysFile((), tmp_path / "missing", interval=1.0)


@given(st.text(max_size=80))
def test_no_other_key_matches(candidate: str) -> None:
    keys = ApiKeySet(parse_entries([entry_for("a", OLD), entry_for("b", NEW)]))
    expected = {OLD: "a", NEW: "b"}.get(candidate)
    assert keys.match(candidate) == expected
