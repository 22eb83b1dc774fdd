"""A PEP's authorization server for the authentication tests: an RSA key, its JWKS file, and
tokens signed with it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from tests.tokens.helpers import sign

PEP_ISSUER = "https://as.example.com"
PDP_AUDIENCE = "https://pdp.example.com"
SCOPE = "authzen:evaluate"


class PepTokens:
    def __init__(self, directory: Path) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "pep-1", "use": "sig"})
        self.jwks_file = directory / "pep-jwks.json"
        self.jwks_file.write_text(json.dumps({"keys": [self.key.as_dict(private=False)]}))

    def token(self, *, lifetime: int = 300, **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": PEP_ISSUER, "aud": PDP_AUDIENCE, "sub": "gw-client",
                                  "client_id": "mcp-gateway", "scope": f"openid {SCOPE}",
                                  "iat": now, "exp": now + lifetime}
        claims.update(overrides)
        return sign(self.key, "RS256", {k: v for k, v in claims.items() if v is not None})

    def settings(self) -> dict[str, Any]:
        return {"pep_jwt_issuers": [PEP_ISSUER], "pep_jwt_audience": PDP_AUDIENCE,
                "pep_jwks_file": self.jwks_file}


@pytest.fixture(scope="session")
def pep_tokens(tmp_path_factory: pytest.TempPathFactory) -> PepTokens:
    return PepTokens(tmp_path_factory.mktemp("pep-tokens"))
