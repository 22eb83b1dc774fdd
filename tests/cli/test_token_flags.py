"""The access-token flags ``pdp serve`` and ``pdp gateway`` share: each sets its setting (and
worker processes get the same values through the environment)."""

from __future__ import annotations

import pytest

from pdp.cli import build_parser
from pdp.cli import gateway as gateway_cli
from pdp.cli import serve as serve_cli
from pdp.cli.token_flags import token_environment
from pdp.settings import Settings

FLAGS = ["--issuer", "https://a.example", "--issuer", "https://b.example,https://c.example",
         "--token-types", "at+jwt", "--introspection-url", "https://a.example/introspect",
         "--introspection-client-id", "pdp", "--introspection-client-auth",
         "client_secret_post", "--introspection-audience", "optional",
         "--token-cache-seconds", "2.5", "--resource", "https://mcp.example/mcp"]


def _check(settings: Settings) -> None:
    assert settings.token_issuers == ["https://a.example", "https://b.example",
                                      "https://c.example"]
    assert settings.token_types == ["at+jwt"]
    assert settings.token_introspection_url == "https://a.example/introspect"
    assert settings.token_introspection_client_id == "pdp"
    assert settings.token_introspection_client_auth == "client_secret_post"
    assert settings.token_introspection_require_audience is False
    assert settings.token_cache_seconds == 2.5
    assert settings.resource_id == "https://mcp.example/mcp"


def test_serve_and_gateway_accept_the_same_token_flags() -> None:
    parser = build_parser()
    _check(serve_cli.settings_from_args(parser.parse_args(["serve", *FLAGS])))
    _check(gateway_cli.settings_from_args(parser.parse_args(["gateway", *FLAGS]), Settings()))


def test_worker_processes_get_the_same_values(monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(["serve", *FLAGS])
    for name, value in token_environment(args).items():
        monkeypatch.setenv(name, value)
    _check(Settings())


def test_an_invalid_value_is_refused() -> None:
    args = build_parser().parse_args(["serve", "--token-cache-seconds", "-1"])
    with pytest.raises(ValueError):
        serve_cli.settings_from_args(args)


def test_serve_does_not_start_on_an_invalid_value(capsys: pytest.CaptureFixture[str]) -> None:
    from pdp.cli import main

    assert main(["serve", "--token-cache-seconds", "-1"]) == 2
    assert "token_cache_seconds" in capsys.readouterr().err
