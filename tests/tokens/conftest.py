"""Fixtures of the token tests: keys generated here, and the local authorization server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from joserfc.jwk import ECKey, OKPKey, RSAKey

from tests.tokens.helpers import AuthServer, running


@pytest.fixture
def auth_server() -> Iterator[AuthServer]:
    with running(AuthServer(base_url="")) as state:
        yield state


@pytest.fixture(scope="session")
def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "use": "sig"})


@pytest.fixture(scope="session")
def other_rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "rsa-2", "use": "sig"})


@pytest.fixture(scope="session")
def ec_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "ec-1"})


@pytest.fixture(scope="session")
def ed_key() -> OKPKey:
    return OKPKey.generate_key("Ed25519", parameters={"kid": "ed-1"})
