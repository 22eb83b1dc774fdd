"""Page tokens: opaque, tamper-evident, bound to one request, shareable between replicas
only through a common key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pdp.errors import InvalidPageToken
from pdp.search import PageTokens

FP = b"\x01" * 16


@given(st.text(max_size=200), st.binary(min_size=16, max_size=16))
def test_a_token_opens_to_the_cursor_it_was_issued_with(cursor: str, fingerprint: bytes) -> None:
    tokens = PageTokens(b"k" * 32)
    assert tokens.open(tokens.issue(fingerprint, cursor), fingerprint) == cursor


@given(st.data())
def test_any_change_to_a_token_is_detected(data: st.DataObject) -> None:
    tokens = PageTokens(b"k" * 32)
    token = tokens.issue(FP, "record-107")
    at = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.="))
    forged = token[:at] + replacement + token[at + 1:]
    if forged == token:
        return
    with pytest.raises(InvalidPageToken):
        tokens.open(forged, FP)


def test_a_token_of_another_request_or_another_key_is_refused() -> None:
    tokens = PageTokens(b"k" * 32)
    token = tokens.issue(FP, "c")
    with pytest.raises(InvalidPageToken, match="different request"):
        tokens.open(token, b"\x02" * 16)
    with pytest.raises(InvalidPageToken, match="invalid page token"):
        PageTokens(b"j" * 32).open(token, FP)
    with pytest.raises(InvalidPageToken):
        PageTokens().open(PageTokens().issue(FP, "c"), FP)  # random keys per process


def test_replicas_sharing_the_secret_accept_each_others_tokens() -> None:
    one, two = PageTokens.from_secret("shared"), PageTokens.from_secret("shared")
    assert two.open(one.issue(FP, "x"), FP) == "x"
