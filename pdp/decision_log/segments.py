"""Segment files: the decision log's durable buffer between the decision path and SQL.

A segment is a file of JSON lines (one decision each, see ``pdp.decision_log.writer``) in the
spool directory (``$PDP_DATA_DIR/decision-log/``), named ``<unix ns>-<pid>-<random>.jsonl`` so
that names sort by creation and never collide between workers or hosts. The process writing a
segment holds an exclusive ``flock`` on it for as long as it may still append: a segment that
can be locked is *sealed* (its writer rotated away from it, closed it, or died), and once fed
into SQL in full it is deleted. A new segment is created under a temporary name, locked, then
renamed, so no reader ever sees an unlocked segment that is still to be written.

Only complete lines count: a line is appended with one ``write`` and ends with ``\\n``; a torn
tail (a machine crash in the middle of a write) is never read as a record.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["SegmentWriter", "abandoned", "complete_lines", "is_sealed", "segments"]

SUFFIX = ".jsonl"


class SegmentWriter:
    """Appends to the current segment of this process; used by one thread only."""

    def __init__(self, directory: Path, max_bytes: int = 16 << 20) -> None:
        self._dir = directory
        self._max = max_bytes
        self._fd: int | None = None
        self._size = 0
        self._dirty = False
        self.path: Path | None = None

    def append(self, data: bytes) -> None:
        if self._fd is None or self._size >= self._max:
            self._rotate()
        assert self._fd is not None
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._size += len(data)
        self._dirty = True

    def sync(self) -> bool:
        """fsync what was appended since the last sync; True if there was anything."""
        if self._fd is None or not self._dirty:
            return False
        os.fdatasync(self._fd)
        self._dirty = False
        return True

    def close(self) -> None:
        """Sync and seal the current segment."""
        if self._fd is not None:
            self.sync()
            os.close(self._fd)  # releases the lock: the segment is sealed
            self._fd = None
            self.path = None

    def _rotate(self) -> None:
        self.close()
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # records may be personal
        name = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(3)}"
        tmp = self._dir / (name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = self._dir / (name + SUFFIX)
        os.rename(tmp, path)
        dir_fd = os.open(self._dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the segment's name survives a machine crash too
        finally:
            os.close(dir_fd)
        self._fd, self._size, self.path = fd, 0, path


def segments(directory: Path) -> list[Path]:
    """The segments in ``directory``, oldest first."""
    try:
        return sorted(p for p in directory.iterdir() if p.name.endswith(SUFFIX))
    except FileNotFoundError:
        return []


def abandoned(directory: Path) -> list[Path]:
    """Segments a writer created but never renamed into place (it died in between): empty,
    and no longer locked."""
    try:
        found = [p for p in directory.iterdir() if p.name.endswith(".tmp")]
    except FileNotFoundError:
        return []
    return [p for p in found if is_sealed(p)]


def is_sealed(path: Path) -> bool:
    """True if no process may append to ``path`` any more (nobody holds its lock)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def complete_lines(path: Path, offset: int, limit: int) -> Iterator[tuple[bytes, int]]:
    """Chunks of complete lines from ``offset``, each at most about ``limit`` bytes (a single
    longer line is one chunk), with the offset just past each chunk."""
    with path.open("rb") as f:
        f.seek(offset)
        pending = b""
        while True:
            data = f.read(max(limit - len(pending), 1 << 16))
            if not data:
                return
            pending += data
            end = pending.rfind(b"\n")
            if end < 0:
                continue
            chunk, pending = pending[:end + 1], pending[end + 1:]
            offset += len(chunk)
            yield chunk, offset
