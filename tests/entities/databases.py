"""Real databases for the store and decision-log tests, and real ways to lose them.

* SQLite: a file in the test's temporary directory. It "goes away" by having its files
  renamed (new connections then fail: the store opens an existing file read-write only) or
  "is locked" by another connection holding ``BEGIN EXCLUSIVE`` (writers time out).
* PostgreSQL: the server named by ``PDP_TEST_POSTGRES_URL`` (``.ci/run`` starts one), each test
  in its own schema, reached through a TCP relay the test can cut (the server becomes
  unreachable: refused connections, live ones reset) and restore.

Without ``PDP_TEST_POSTGRES_URL`` the PostgreSQL variants are skipped, saying so loudly.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

__all__ = ["Backend", "POSTGRES_URL", "Relay", "make_backend", "require_postgres"]

POSTGRES_URL = os.environ.get("PDP_TEST_POSTGRES_URL")
SKIP_REASON = ("PDP_TEST_POSTGRES_URL is not set: the PostgreSQL variant of this test did NOT "
               "run (.ci/run starts a server and sets it)")


def require_postgres() -> str:
    if not POSTGRES_URL:
        pytest.skip(SKIP_REASON)
    return POSTGRES_URL


class Relay:
    """A TCP relay 127.0.0.1:port → the database server, which a test can cut and restore."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Refuse new connections and reset the open ones."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            open_sockets, self._sockets = self._sockets, set()
        for s in open_sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


class Backend:
    """One database for one test, with the means to make it unreachable."""

    def __init__(self, name: str, url: str, *, path: Path | None = None,
                 relay: Relay | None = None, admin_url: str | None = None,
                 schema: str | None = None) -> None:
        self.name = name
        self.url = url
        self.path = path
        self.relay = relay
        self._admin_url = admin_url
        self._schema = schema

    @contextlib.contextmanager
    def unreachable(self) -> Iterator[None]:
        """The database cannot be reached inside the block."""
        if self.relay is not None:
            self.relay.down()
            try:
                yield
            finally:
                self.relay.up()
            return
        assert self.path is not None
        moved = []
        for suffix in ("", "-wal", "-shm"):
            source = Path(str(self.path) + suffix)
            if source.exists():
                target = source.with_name(source.name + ".away")
                source.rename(target)
                moved.append((target, source))
        try:
            yield
        finally:
            for target, source in moved:
                target.rename(source)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Writers cannot write inside the block (SQLite: an exclusive lock; PostgreSQL:
        unreachable)."""
        if self.relay is not None:
            with self.unreachable():
                yield
            return
        assert self.path is not None
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=10)
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()

    def close(self) -> None:
        if self.relay is not None:
            self.relay.down()
        if self._admin_url is not None and self._schema is not None:
            engine = sa.create_engine(self._admin_url)
            try:
                with engine.begin() as conn:
                    conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{self._schema}" CASCADE')
            finally:
                engine.dispose()


def make_backend(name: str, tmp_path: Path, filename: str = "entities.db") -> Backend:
    if name == "sqlite":
        path = tmp_path / filename
        return Backend("sqlite", f"sqlite:///{path}", path=path)
    admin_url = require_postgres()
    parsed = make_url(admin_url).set(drivername="postgresql+psycopg")
    schema = "pdp_test_" + uuid.uuid4().hex[:12]
    engine = sa.create_engine(parsed)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    finally:
        engine.dispose()
    relay = Relay(parsed.host or "127.0.0.1", parsed.port or 5432)
    url = parsed.set(host="127.0.0.1", port=relay.port,
                     query={**parsed.query, "options": f"-csearch_path={schema}"})
    return Backend("postgres", url.render_as_string(hide_password=False), relay=relay,
                   admin_url=parsed.render_as_string(hide_password=False), schema=schema)
