"""Each decision-log test runs against SQLite and against a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.entities.databases import Backend, make_backend


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    db = make_backend(request.param, tmp_path, "decisions.db")
    try:
        yield db
    finally:
        db.close()
