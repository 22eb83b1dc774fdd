"""The decision log table: one row per decision, one per search request.

What a row holds (the audit trail the architecture's "decision log" box keeps):

| column | content |
|---|---|
| ``at`` | when the decision was made (UTC) |
| ``request_id`` | the ``X-Request-ID`` of the HTTP request, or one generated for it |
| ``endpoint`` | ``evaluation``, ``evaluations`` or ``search/{subject,resource,action}`` |
| ``item`` | index of the decision in an ``evaluations`` batch |
| ``subject_*``, ``action``, ``resource_*`` | who, what, on what (a search: the type only of |
| | the searched part) |
| ``decision``, ``outcome`` | the answer (``null`` for a search) and why: ``permit``, |
| | ``forbid``, ``no_permit``, ``error`` |
| ``reasons``, ``errors`` | determining policies (their ``@id``) and evaluation errors |
| ``policy_version`` | the version of the policy set that decided |
| ``latency_ms`` | server time spent on the request |
| ``result_count`` | number of results of a search |
| ``context``, ``properties`` | the request context and the subject/resource/action |
| | properties: in full, as a SHA-256 digest, or not at all (``personal_data``) |
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

__all__ = ["CHECKPOINTS", "DecisionRow", "MIGRATIONS"]

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: a rowid alias


class DecisionRow(SQLModel, table=True):
    """Indexed for the questions an audit starts from (when, who, on what); every other
    filter narrows those. Each index costs every insert, so there are only three."""

    __tablename__ = "pdp_decisions"

    id: int | None = Field(default=None, primary_key=True,
                           sa_type=_ID)
    at: datetime = Field(sa_type=sa.DateTime(timezone=True),
                         index=True)
    request_id: str = Field(max_length=200)
    endpoint: str = Field(max_length=32)
    item: int | None = None
    subject_type: str | None = None
    subject_id: str | None = Field(default=None, index=True)
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = Field(default=None, index=True)
    decision: bool | None = None
    outcome: str | None = Field(default=None, max_length=16)
    reasons: list[str] = Field(default_factory=list, sa_type=_JSON)
    errors: list[str] = Field(default_factory=list, sa_type=_JSON)
    policy_version: str = Field(max_length=64)
    latency_ms: float
    result_count: int | None = None
    context: Any | None = Field(default=None, sa_type=_JSON)
    properties: Any | None = Field(default=None, sa_type=_JSON)
    personal_data: str = Field(max_length=8)


TABLE: sa.Table = DecisionRow.__table__  # type: ignore[attr-defined]


# How far each segment file (pdp.decision_log.segments) has been fed into the table: updated in
# the transaction that inserts its lines, so a line is written exactly once whatever stops.
CHECKPOINTS = sa.Table(
    "pdp_decision_log_segments", SQLModel.metadata,
    sa.Column("segment", sa.String(200), primary_key=True),
    sa.Column("consumed", sa.BigInteger(), nullable=False))


def _create_v1(conn: Connection) -> None:
    SQLModel.metadata.create_all(conn, tables=[TABLE])


def _create_v2(conn: Connection) -> None:
    SQLModel.metadata.create_all(conn, tables=[CHECKPOINTS])


# Schema history of the decision log: step n takes the table from version n to n + 1.
MIGRATIONS = (_create_v1, _create_v2)
