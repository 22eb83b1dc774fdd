"""Reading the decision log: filters, newest-first pages and tails (``/admin/decisions``,
``pdp decisions query|tail``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from pdp.decision_log.model import MIGRATIONS, TABLE
from pdp.entities.database import Database, migrate, unavailable
from pdp.errors import InvalidField

__all__ = ["DecisionFilter", "DecisionPage", "DecisionReader", "parse_time"]

MAX_PAGE = 1000


def parse_time(value: str | None, field: str) -> datetime | None:
    """An ISO 8601 time (UTC when it has no zone), in UTC, or None. A time that exists only
    in its own zone (``0001-01-01T00:00:00+00:01`` is before year 1 in UTC) is invalid."""
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidField(f"{field} must be an ISO 8601 time between years 1 and 9999 "
                           f"(UTC), got {value[:64]!r}", field=field) from None


@dataclass(frozen=True, slots=True)
class DecisionFilter:
    subject_type: str | None = None
    subject_id: str | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    decision: bool | None = None
    endpoint: str | None = None
    request_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> list[sa.ColumnElement[bool]]:
        c = TABLE.c
        conditions: list[sa.ColumnElement[bool]] = []
        for column, value in ((c.subject_type, self.subject_type),
                              (c.subject_id, self.subject_id), (c.action, self.action),
                              (c.resource_type, self.resource_type),
                              (c.resource_id, self.resource_id), (c.endpoint, self.endpoint),
                              (c.request_id, self.request_id)):
            if value is not None:
                conditions.append(column == value)
        if self.decision is not None:
            conditions.append(c.decision == self.decision)
        if self.since is not None:  # in UTC: SQLite keeps times as UTC text
            conditions.append(c.at >= self.since.astimezone(UTC))
        if self.until is not None:
            conditions.append(c.at < self.until.astimezone(UTC))
        return conditions


@dataclass(frozen=True, slots=True)
class DecisionPage:
    decisions: list[dict[str, Any]]
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"decisions": self.decisions, "next_cursor": self.next_cursor}


class DecisionReader:
    """Queries over the decision log database (read-only but for creating the schema)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._ready = False

    def close(self) -> None:
        self._db.dispose()

    def _ensure_schema(self) -> None:
        if not self._ready:
            migrate(self._db, "decision_log", MIGRATIONS)
            self._ready = True

    def query(self, filters: DecisionFilter, *, limit: int = 100,
              cursor: str | None = None) -> DecisionPage:
        """Newest first; ``cursor`` (from a previous page) continues with older records."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidField(f"limit must be between 1 and {MAX_PAGE}", field="limit")
        before: int | None = None
        if cursor:
            if not cursor.isdigit():
                raise InvalidField("invalid cursor", field="cursor")
            before = int(cursor)
        conditions = filters.where()
        if before is not None:
            conditions.append(TABLE.c.id < before)
        rows = self._select(conditions, TABLE.c.id.desc(), limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return DecisionPage(rows, str(rows[-1]["id"]) if more and rows else None)

    def after(self, last_id: int, filters: DecisionFilter = DecisionFilter(),
              limit: int = MAX_PAGE) -> list[dict[str, Any]]:
        """Records newer than ``last_id``, oldest first (for ``tail --follow``)."""
        return self._select([*filters.where(), TABLE.c.id > last_id], TABLE.c.id.asc(), limit)

    def latest(self, count: int, filters: DecisionFilter = DecisionFilter(),
               ) -> list[dict[str, Any]]:
        """The last ``count`` records, oldest first."""
        rows = self._select(filters.where(), TABLE.c.id.desc(), count)
        return rows[::-1]

    def _select(self, conditions: list[sa.ColumnElement[bool]], order: Any,
                limit: int) -> list[dict[str, Any]]:
        query = sa.select(TABLE).where(*conditions).order_by(order).limit(limit)
        self._ensure_schema()
        with unavailable("reading the decision log"), self._db.read() as conn:
            return [_to_dict(r._mapping) for r in conn.execute(query)]


def _to_dict(row: Any) -> dict[str, Any]:
    at = row["at"]
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    out: dict[str, Any] = {
        "id": row["id"], "at": at.isoformat(), "request_id": row["request_id"],
        "endpoint": row["endpoint"],
    }
    if row["item"] is not None:
        out["item"] = row["item"]
    if row["subject_type"] is not None:
        out["subject"] = {"type": row["subject_type"], "id": row["subject_id"]}
    if row["action"] is not None:
        out["action"] = row["action"]
    if row["resource_type"] is not None:
        out["resource"] = {"type": row["resource_type"], "id": row["resource_id"]}
    if row["decision"] is not None:
        out["decision"] = row["decision"]
        out["outcome"] = row["outcome"]
        out["reasons"] = row["reasons"] or []
    if row["errors"]:
        out["errors"] = row["errors"]
    if row["result_count"] is not None:
        out["result_count"] = row["result_count"]
    out["policy_version"] = row["policy_version"]
    out["latency_ms"] = row["latency_ms"]
    for key in ("context", "properties"):
        if row[key] is not None:
            out[key] = row[key]
    out["personal_data"] = row["personal_data"]
    return out
