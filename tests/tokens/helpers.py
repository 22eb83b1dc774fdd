"""A token factory and a real local authorization-server stub (JWKS and RFC 7662
introspection) on 127.0.0.1, for the token tests."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import Key

ISSUER = "https://as.example.com"
AUDIENCE = "https://mcp.example.com/mcp"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class AuthServer:
    """What the stub serves, and what it was asked."""

    base_url: str
    jwks: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    jwks_status: int = 200
    introspection: dict[str, Any] = field(default_factory=lambda: {"active": False})
    introspection_status: int = 200
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def jwks_url(self) -> str:
        return self.base_url + "/jwks.json"

    @property
    def introspection_url(self) -> str:
        return self.base_url + "/introspect"

    def count(self, path: str) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r.path == path)


def _handler(state: AuthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _record(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with state.lock:
                state.requests.append(Recorded(self.command, self.path,
                                               dict(self.headers.items()), body))
            return body

        def _answer(self, status: int, document: Any) -> None:
            payload = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._record()
            if self.path == "/jwks.json":
                self._answer(state.jwks_status, state.jwks)
            else:
                self._answer(404, {})

        def do_POST(self) -> None:
            self._record()
            if self.path == "/introspect":
                self._answer(state.introspection_status, state.introspection)
            else:
                self._answer(404, {})

    return Handler


@contextmanager
def running(state: AuthServer) -> Iterator[AuthServer]:
    """Serve ``state`` on 127.0.0.1 (a free port) while the block runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01},
                              daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def jwks_of(*keys: Key) -> dict[str, Any]:
    """The public JWKS document of ``keys``."""
    return {"keys": [k.as_dict(private=False) for k in keys]}


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice@example.com",
                            "client_id": "agent-app-1", "iat": now, "exp": now + 300}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: Key, alg: str, payload: dict[str, Any], **header: Any) -> str:
    """A JWS signed by joserfc with ``key``."""
    protected = {"alg": alg, "kid": key.kid, **header}
    return jwt.encode({k: v for k, v in protected.items() if v is not None}, payload, key,
                      algorithms=[alg])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A compact JWS assembled by hand (for forged tokens)."""
    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()),
                     b64(signature)])
