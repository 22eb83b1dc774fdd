"""Fixtures of the gateway tests: one signing key (and JWKS file) per session."""

from __future__ import annotations

import pytest

from tests.gateway.support import Keys


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(tmp_path_factory.mktemp("keys"))
