"""Where the command-line tools find the server's databases, and a warning before one of them
would create a new, empty database (usually: run from another directory than the server)."""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

__all__ = ["warn_if_new_database"]


def warn_if_new_database(url: str, what: str, data_dir: Path) -> None:
    """Warn on stderr when ``url`` names a SQLite file that does not exist yet."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        return
    path = Path(parsed.database)
    if parsed.database == ":memory:" or path.exists() or (
            path.parent.exists() and not path.parent.is_dir()):
        return  # there, or it cannot be created at all (the open says why)
    print(f"warning: no {what} at {path.resolve()}: a new, empty database will be created "
          f"there. PDP_DATA_DIR is {data_dir} (resolved against the working directory, "
          f"{Path.cwd()}); run where the server runs, or give the same absolute --data-dir or "
          "PDP_DATA_DIR.", file=sys.stderr)
