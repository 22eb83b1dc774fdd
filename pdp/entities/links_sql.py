"""Template links held in the entity store's database (table ``pdp_links``).

A link row is written in the same kind of versioned transaction as an entity: the store's
version moves, every replica's poller picks the change up by revision, and decisions see the
new links at the next store version, without a reload of the policy files. A removed link
leaves a tombstone (``deleted``) so that replicas learn of the removal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from pdp.entities.database import utcnow
from pdp.policies.links import LinkInfo

__all__ = ["LinkRow", "create_links_table", "read_links", "tombstone_links", "upsert_links",
           "existing_links"]

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


class LinkRow(SQLModel, table=True):
    """One stored template link (or the tombstone of a removed one)."""

    __tablename__ = "pdp_links"

    link_id: str = Field(primary_key=True)
    template_id: str
    values: dict[str, Any] = Field(sa_type=_JSON)  # slot -> {"type", "id"}
    revision: int = Field(sa_type=sa.BigInteger, index=True)
    deleted: bool = False
    updated_at: datetime = Field(sa_type=sa.DateTime(timezone=True))


LINKS: sa.Table = LinkRow.__table__  # type: ignore[attr-defined]


def create_links_table(conn: Connection) -> None:
    """Migration step: the links table."""
    SQLModel.metadata.create_all(conn, tables=[LINKS], checkfirst=True)


def _info(row: Any) -> LinkInfo:
    return LinkInfo(row.link_id, row.template_id,
                    {slot: (v["type"], v["id"]) for slot, v in (row.values or {}).items()})


def read_links(conn: Connection, after_revision: int | None,
               ) -> tuple[list[LinkInfo], list[str]]:
    """Links changed after ``after_revision`` (all live links when None): upserts, removals."""
    query = sa.select(LINKS)
    if after_revision is None:
        query = query.where(LINKS.c.deleted == sa.false())
    else:
        query = query.where(LINKS.c.revision > after_revision)
    live: list[LinkInfo] = []
    gone: list[str] = []
    for row in conn.execute(query):
        if row.deleted:
            gone.append(row.link_id)
        else:
            live.append(_info(row))
    return live, gone


def existing_links(conn: Connection, link_ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(link_ids), 500):
        chunk = list(link_ids[start:start + 500])
        found.update(r.link_id for r in conn.execute(sa.select(LINKS.c.link_id).where(
            LINKS.c.link_id.in_(chunk), LINKS.c.deleted == sa.false())))
    return found


def upsert_links(conn: Connection, links: Sequence[LinkInfo], version: int,
                 is_sqlite: bool) -> None:
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    if not links:
        return
    now = utcnow()
    stmt = (sqlite_insert if is_sqlite else pg_insert)(LINKS)
    stmt = stmt.on_conflict_do_update(
        index_elements=[LINKS.c.link_id],
        set_={c: stmt.excluded[c] for c in ("template_id", "values", "revision", "deleted",
                                            "updated_at")})
    for start in range(0, len(links), 500):
        conn.execute(stmt, [_row(x, version, now) for x in links[start:start + 500]])


def _row(link: LinkInfo, version: int, now: datetime) -> Mapping[str, Any]:
    return {"link_id": link.link_id, "template_id": link.template_id,
            "values": {slot: {"type": t, "id": i} for slot, (t, i) in link.values.items()},
            "revision": version, "deleted": False, "updated_at": now}


def tombstone_links(conn: Connection, link_ids: Sequence[str], version: int) -> None:
    now = utcnow()
    for start in range(0, len(link_ids), 500):
        conn.execute(sa.update(LINKS).where(LINKS.c.link_id.in_(
            list(link_ids[start:start + 500]))).values(deleted=True, revision=version,
                                                       updated_at=now))
