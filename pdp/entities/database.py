"""SQL plumbing shared by the entity store and the decision log: engines, migrations, errors.

Two back ends are supported: SQLite (a file, zero set-up, the default) and PostgreSQL
(``postgresql+psycopg://`` URLs; ``postgres://`` and ``postgresql://`` are read as psycopg 3).

* SQLite files are opened in WAL mode (readers never wait for the writer) with a busy timeout,
  and write transactions start with ``BEGIN IMMEDIATE`` so that two writers never deadlock on a
  lock upgrade. After creation a file is opened in ``rw`` mode only: if it disappears (a volume
  unmounted), the store reports itself unavailable instead of silently starting empty.
* Schemas are versioned per component in the ``pdp_schema_version`` table. :func:`migrate` runs
  the steps a database has not seen yet, in one transaction, under a lock (an advisory lock on
  PostgreSQL, the write lock on SQLite), so replicas starting together migrate once. A database
  newer than the code is refused rather than misread.
* Driver errors never leave this package: :func:`unavailable` turns a SQLAlchemy error into
  :class:`~pdp.errors.StoreUnavailable` (the HTTP layer answers 503 with ``Retry-After``).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool, QueuePool
from sqlmodel import Field, SQLModel

from pdp.errors import StoreUnavailable

__all__ = [
    "Database",
    "MigrationStep",
    "SchemaVersionRow",
    "describe_url",
    "migrate",
    "open_database",
    "sqlite_url",
    "unavailable",
    "utcnow",
]

log = logging.getLogger("pdp.database")

MigrationStep = Callable[[Connection], None]

_IMMEDIATE = "pdp_immediate"


class SchemaVersionRow(SQLModel, table=True):
    """Which schema version each component (``entities``, ``decision_log``) has applied."""

    __tablename__ = "pdp_schema_version"

    component: str = Field(primary_key=True, max_length=64)
    version: int
    applied_at: datetime = Field(sa_type=sa.DateTime(timezone=True))


def utcnow() -> datetime:
    return datetime.now(UTC)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def describe_url(url: str) -> str:
    """The URL with its password hidden, for logs and ``/status``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid URL>"


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class Database:
    """One SQLAlchemy engine and what is known about its back end."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        self.dialect = engine.dialect.name

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on success."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{_IMMEDIATE: True})
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: one consistent snapshot on SQLite (WAL)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(url: str, *, busy_timeout: float = 5.0, connect_timeout: int = 5,
                  keep_open: bool = False) -> Database:
    """An engine for ``url``; SQLite files (and their directory) are created if missing.

    SQLite connections are opened per transaction (a removed file is noticed at once) unless
    ``keep_open``: then one is kept (a busy writer saves the open and the checkpoint that
    closing the last connection to a WAL database costs)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreUnavailable(f"invalid database URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return Database(_sqlite_engine(parsed, busy_timeout, keep_open), url)
    if backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
        args: dict[str, Any] = {"connect_timeout": connect_timeout}
        engine = sa.create_engine(
            parsed, pool_pre_ping=True, pool_size=4, max_overflow=8, pool_timeout=connect_timeout,
            connect_args=args, json_serializer=_dumps, json_deserializer=orjson.loads)
        return Database(engine, url)
    raise StoreUnavailable(f"unsupported database {backend!r}: use sqlite or postgresql")


def _sqlite_engine(url: URL, busy_timeout: float, keep_open: bool) -> Engine:
    database = url.database or ""
    if database in ("", ":memory:"):
        raise StoreUnavailable("an in-memory SQLite database cannot be shared; give a file")
    path = Path(database).expanduser().resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sqlite3.connect(path).close()  # create the file once; later opens never create it
    except (OSError, sqlite3.Error) as exc:
        raise StoreUnavailable(f"cannot create the SQLite database {path}: {exc}") from None
    target = f"file:{path}?mode=rw"

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(target, uri=True, timeout=busy_timeout, check_same_thread=False,
                               isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        if keep_open:  # a long-lived writer: keep its indexes' pages in memory
            conn.execute("PRAGMA cache_size=-65536")
        return conn

    pool: dict[str, Any] = ({"poolclass": QueuePool, "pool_size": 1, "max_overflow": 4}
                            if keep_open else {"poolclass": NullPool})
    engine = sa.create_engine("sqlite+pysqlite://", creator=connect, **pool,
                              json_serializer=_dumps, json_deserializer=orjson.loads)

    @event.listens_for(engine, "begin")
    def begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@contextmanager
def unavailable(what: str) -> Iterator[None]:
    """Translate any database error inside the block into :class:`StoreUnavailable`."""
    try:
        yield
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        log.warning("%s: %s", what, detail[0] if detail else type(exc).__name__)
        raise StoreUnavailable(f"{what}: the database cannot be reached") from None


def _lock_key(component: str) -> int:
    return int.from_bytes(hashlib.sha256(component.encode()).digest()[:8], "big", signed=True)


def migrate(db: Database, component: str, steps: Sequence[MigrationStep]) -> int:
    """Bring ``component``'s tables to ``len(steps)``; return the version found before.

    Step ``n`` (0-based) takes the schema from version ``n`` to ``n + 1``. Each database records
    its version per component, so the entity store and the decision log can share one database.
    """
    table: sa.Table = SchemaVersionRow.__table__  # type: ignore[attr-defined]
    with unavailable(f"migrating the {component} schema"), db.write() as conn:
        if not db.is_sqlite:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key("pdp-migrations"))))
        SQLModel.metadata.create_all(conn, tables=[table], checkfirst=True)
        found = conn.execute(sa.select(table.c.version).where(
            table.c.component == component)).scalar_one_or_none()
        current = int(found or 0)
        if current > len(steps):
            raise StoreUnavailable(
                f"the {component} schema of the database is version {current}, newer than this "
                f"PDP knows ({len(steps)}); upgrade the PDP")
        for step in steps[current:]:
            step(conn)
        if current < len(steps):
            values = {"version": len(steps), "applied_at": utcnow()}
            if found is None:
                conn.execute(sa.insert(table).values(component=component, **values))
            else:
                conn.execute(sa.update(table).where(table.c.component == component)
                             .values(**values))
            log.info("%s schema migrated from version %d to %d", component, current, len(steps))
    return current
