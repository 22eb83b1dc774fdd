"""``pdp gateway``: flags over settings, and refusing to start on incomplete configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdp.cli import build_parser, main
from pdp.cli.gateway import settings_from_args
from pdp.gateway import GatewayConfig
from pdp.settings import Settings
from tests.conftest import POLICIES
from tests.gateway.support import ISSUER, Keys


def test_flags_win_over_settings(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDP_GATEWAY_UPSTREAM", "http://127.0.0.1:1/env")
    monkeypatch.setenv("PDP_GATEWAY_UPSTREAM_TOKEN", "from-env")
    args = build_parser().parse_args([
        "gateway", "--upstream", "http://127.0.0.1:9000/mcp", "--port", "9100",
        "--authorization-server", ISSUER, "--authorization-server", "https://as2.example.com",
        "--jwks-file", str(keys.jwks_file), "--algorithms", "ES256,EdDSA",
        "--policies", str(POLICIES / "mcp")])
    settings = settings_from_args(args, Settings())
    assert settings.gateway_upstream == "http://127.0.0.1:9000/mcp"
    assert settings.gateway_upstream_token is not None
    assert settings.gateway_upstream_token.get_secret_value() == "from-env"
    assert settings.authorization_servers == [ISSUER, "https://as2.example.com"]
    assert settings.token_algorithms == ["ES256", "EdDSA"]
    config = GatewayConfig.from_settings(settings)
    assert config.resource == "http://127.0.0.1:9100/mcp"
    assert config.resource_metadata_url == \
        "http://127.0.0.1:9100/.well-known/oauth-protected-resource/mcp"


@pytest.mark.parametrize(("argv", "message"), [
    ([], "upstream MCP server is not set"),
    (["--upstream", "http://127.0.0.1:9000/mcp"], "issuer"),
    (["--upstream", "http://127.0.0.1:9000/mcp", "--authorization-server", ISSUER], "JWKS"),
    (["--upstream", "http://127.0.0.1:9000/mcp", "--authorization-server", ISSUER,
      "--jwks-file", "{jwks}", "--public-url", "http://gw.example.com"], "https"),
])
def test_incomplete_configuration_does_not_start(
        keys: Keys, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, argv: list[str], message: str) -> None:
    for name in ("PDP_GATEWAY_UPSTREAM", "PDP_AUTHORIZATION_SERVERS", "PDP_TOKEN_ISSUERS",
                 "PDP_TOKEN_JWKS_URL", "PDP_TOKEN_JWKS_FILE", "PDP_GATEWAY_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PDP_DATA_DIR", str(tmp_path))
    argv = [a.replace("{jwks}", str(keys.jwks_file)) for a in argv]
    assert main(["gateway", "--policies", str(POLICIES / "mcp"), *argv]) == 2
    assert message in capsys.readouterr().err
