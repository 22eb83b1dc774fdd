"""The settings object: a setting that was replaced stops the PDP with a message saying what
replaced it, rather than being ignored."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pdp.settings import Settings


def test_the_replaced_decision_cache_size_is_refused_naming_its_replacement(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDP_DECISION_CACHE_SIZE", "1000")
    with pytest.raises(ValidationError, match="PDP_DECISION_CACHE_BYTES"):
        Settings()


def test_the_decision_cache_budget_is_in_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDP_DECISION_CACHE_BYTES", "1048576")
    assert Settings().decision_cache_bytes == 1_048_576
