"""``pdp serve``: run the PDP with uvicorn. Flags win over ``PDP_*`` settings."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import ssl
import sys
from pathlib import Path
from typing import Any

from pdp.auth import check_exposure
from pdp.cli.check import refuse_to_start
from pdp.cli.text import plain
from pdp.cli.token_flags import add_token_flags, token_environment, token_overrides
from pdp.decision_log import DecisionLog
from pdp.errors import ConfigurationError, PolicyLoadError
from pdp.logs import configure_logging
from pdp.policies.compiled import compile_directory
from pdp.service.reload import GENERATION_FILE, GenerationFile
from pdp.settings import Settings

__all__ = ["register", "settings_from_args"]

# flag → setting name
_FLAGS = {"policies": "policies", "host": "host", "port": "port", "workers": "workers",
          "public_url": "public_url", "decision_cache": "decision_cache",
          "log_level": "log_level", "database_url": "database_url",
          "tls_certfile": "tls_certfile", "tls_keyfile": "tls_keyfile",
          "tls_client_ca": "tls_client_ca", "playground": "playground"}


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "serve", help="serve the AuthZEN API", description=plain(__doc__))
    p.add_argument("--policies", type=Path, help="policy-set directory (PDP_POLICIES)")
    p.add_argument("--host", help="bind address (PDP_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (PDP_PORT, default 8080)")
    p.add_argument("--workers", type=int, help="worker processes (PDP_WORKERS, default 1)")
    p.add_argument("--public-url", help="base URL advertised in metadata (PDP_PUBLIC_URL)")
    p.add_argument("--decision-cache", choices=["on", "off"],
                   help="decision cache (PDP_DECISION_CACHE, default on)")
    p.add_argument("--database-url", help="entity store URL (PDP_DATABASE_URL)")
    p.add_argument("--log-level", help="log level (PDP_LOG_LEVEL, default info)")
    p.add_argument("--tls-certfile", type=Path,
                   help="PEM certificate chain: serve HTTPS (PDP_TLS_CERTFILE)")
    p.add_argument("--tls-keyfile", type=Path, help="PEM private key (PDP_TLS_KEYFILE)")
    p.add_argument("--tls-client-ca", type=Path,
                   help="require client certificates signed by this CA (PDP_TLS_CLIENT_CA)")
    p.add_argument("--playground", action="store_const", const=True, default=None,
                   help="serve the policy playground at /playground (PDP_PLAYGROUND)")
    add_token_flags(p)
    p.set_defaults(run=run)


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {name: getattr(args, flag) for flag, name in _FLAGS.items()
                 if getattr(args, flag, None) is not None}
    merged = Settings().model_dump()
    merged.update(overrides)
    merged.update(token_overrides(args))
    return Settings.model_validate(merged)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from pdp.http.protocol import GuardedConfig

    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 2
    try:  # PEP credentials, or a loopback address (see pdp.auth); the decision log's key;
        # a playground only where it is safe
        check_exposure(settings)
        DecisionLog.check_settings(settings)
        from pdp.playground import check_playground

        check_playground(settings)
    except ConfigurationError as exc:
        print(f"cannot start: {exc.message}", file=sys.stderr)
        return 2
    try:  # fail a cold start on an invalid policy set, with every diagnostic
        compile_directory(settings.policies_dir())
    except PolicyLoadError as exc:
        return refuse_to_start(settings.policies_dir(), exc)
    # Workers are separate processes: hand them the effective settings via the environment.
    for flag, name in _FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            os.environ[f"PDP_{name.upper()}"] = str(value)
    os.environ.update(token_environment(args))
    os.environ["PDP_POLICIES"] = str(settings.policies_dir().resolve())
    options: dict[str, Any] = dict(
        factory=True, host=settings.host, port=settings.port, workers=settings.workers,
        loop="uvloop", log_level=settings.log_level, access_log=False,
        server_header=False, log_config=None,  # pdp.logs configures logging
        # X-Forwarded-For / -Proto only from the proxies listed (the client address is
        # otherwise the socket's peer: rate limits and logs are not the client's to choose)
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
        timeout_graceful_shutdown=settings.shutdown_timeout,
        # the head deadline and size uvicorn lacks (pdp.http.protocol)
        header_timeout=settings.header_timeout, max_header_bytes=settings.max_header_bytes,
        **_tls_options(settings))
    configure_logging(settings)
    if settings.workers > 1:
        return _supervise(settings, options)
    # uvicorn stops gracefully on SIGTERM (in-flight requests finish within
    # PDP_SHUTDOWN_TIMEOUT, then the lifespan drains the decision log) and then re-raises the
    # signal; this handler turns that into exit status 0 rather than death by SIGTERM.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    server = uvicorn.Server(GuardedConfig("pdp.http.app:app_from_environment", **options))
    server.run()
    return 0 if server.started else 3


def _exit_cleanly(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def _tls_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's ssl_* options (none without PDP_TLS_CERTFILE)."""
    if settings.tls_certfile is None:
        return {}
    options: dict[str, Any] = {"ssl_certfile": str(settings.tls_certfile)}
    if settings.tls_keyfile is not None:
        options["ssl_keyfile"] = str(settings.tls_keyfile)
    if settings.tls_keyfile_password is not None:
        options["ssl_keyfile_password"] = settings.tls_keyfile_password.get_secret_value()
    if settings.tls_client_ca is not None:
        options["ssl_ca_certs"] = str(settings.tls_client_ca)
        options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return options


def _supervise(settings: Settings, options: dict[str, Any]) -> int:
    """uvicorn's multi-worker supervisor, plus SIGUSR1: every worker reloads the policy set.

    The supervisor owns SIGHUP (it replaces the workers one by one) and queues the other
    signals it receives for a ``handle_<name>`` method; SIGUSR1 bumps the generation file
    every worker polls (see :mod:`pdp.service.reload`)."""
    from uvicorn.supervisors import Multiprocess

    from pdp.http.protocol import GuardedConfig

    generation = GenerationFile(settings.data_dir / GENERATION_FILE)

    class Supervisor(Multiprocess):
        def handle_usr1(self) -> None:
            logging.getLogger("uvicorn.error").info("Received SIGUSR1, every worker reloads.")
            generation.bump()

    config = GuardedConfig("pdp.http.app:app_from_environment", **options)
    try:
        Supervisor(config, sockets=[config.bind_socket()]).run()
    except KeyboardInterrupt:
        pass
    finally:
        if config.uds and os.path.exists(config.uds):
            os.remove(config.uds)
    return 0
