"""``pdp gateway``: an authorizing MCP gateway in front of one Streamable HTTP MCP server.

Every client request needs a valid bearer token for this gateway's resource identifier; every
client-to-server message is authorized with COAZ mappings against the in-process engine
(``--policies``) or a remote AuthZEN PDP (``--pdp-url``). Flags win over ``PDP_*`` settings.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from pdp.cli.check import refuse_to_start
from pdp.cli.text import plain
from pdp.cli.token_flags import add_token_flags, token_overrides
from pdp.errors import PDPError, PolicyLoadError
from pdp.logs import configure_logging
from pdp.settings import Settings

__all__ = ["register", "settings_from_args"]

# flag → setting name
_FLAGS = {
    "upstream": "gateway_upstream", "host": "gateway_host", "port": "gateway_port",
    "path": "gateway_path", "public_url": "gateway_public_url", "policies": "policies",
    "pdp_url": "gateway_pdp_url", "tools_file": "gateway_tools_file",
    "identity_claim": "coaz_identity_claim", "log_level": "log_level",
}
_SECRETS = {"upstream_token": "gateway_upstream_token", "pdp_token": "gateway_pdp_token"}


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "gateway", help="run an authorizing MCP gateway", description=plain(__doc__))
    p.add_argument("--upstream", help="upstream MCP endpoint URL (PDP_GATEWAY_UPSTREAM)")
    p.add_argument("--host", help="bind address (PDP_GATEWAY_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (PDP_GATEWAY_PORT, default 8090)")
    p.add_argument("--path", help="MCP endpoint path (PDP_GATEWAY_PATH, default /mcp)")
    p.add_argument("--public-url", help="base URL clients use (PDP_GATEWAY_PUBLIC_URL)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--policies", type=Path,
                       help="policy set of the in-process engine (PDP_POLICIES)")
    where.add_argument("--pdp-url", help="remote AuthZEN PDP base URL (PDP_GATEWAY_PDP_URL)")
    p.add_argument("--pdp-token", help="bearer token for the remote PDP "
                   "(prefer PDP_GATEWAY_PDP_TOKEN)")
    p.add_argument("--upstream-token", help="bearer token for the upstream "
                   "(prefer PDP_GATEWAY_UPSTREAM_TOKEN)")
    p.add_argument("--tools-file", type=Path, help="pin the tool mappings to this tools/list "
                   "result (PDP_GATEWAY_TOOLS_FILE)")
    p.add_argument("--identity-claim", help="token claim naming the subject "
                   "(PDP_COAZ_IDENTITY_CLAIM, default sub)")
    p.add_argument("--log-level", help="log level (PDP_LOG_LEVEL, default info)")
    add_token_flags(p)
    p.set_defaults(run=run)


def settings_from_args(args: argparse.Namespace, base: Settings | None = None) -> Settings:
    overrides: dict[str, Any] = {}
    for flag, name in (*_FLAGS.items(), *_SECRETS.items()):
        value = getattr(args, flag, None)
        if value is not None:
            overrides[name] = value
    overrides.update(token_overrides(args))
    # model_copy does not validate: build a fresh, validated object from the merged values.
    merged = (base or Settings()).model_dump()
    merged.update(overrides)
    return Settings.model_validate(merged)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from pdp.gateway import Gateway, create_gateway_app

    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)  # PDP_LOG_FORMAT; request data escaped in text lines
    for noisy in ("httpx", "httpcore"):  # one line per proxied request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        gateway = Gateway.from_settings(settings)
    except PolicyLoadError as exc:
        return refuse_to_start(settings.policies_dir(), exc)
    except (ValueError, OSError, PDPError) as exc:  # PDPError: e.g. an unreadable tools file
        print(f"cannot start: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(create_gateway_app(gateway), host=settings.gateway_host,
                port=settings.gateway_port, loop="uvloop", http="httptools",
                log_level=settings.log_level, access_log=False, server_header=False,
                proxy_headers=False, lifespan="on", log_config=None)
    return 0
