"""``pdp decisions``: read the decision log.

    pdp decisions tail [-n N] [--follow]     the last N decisions, oldest first; --follow keeps
                                             printing new ones as they are written
    pdp decisions query [filters]            newest first, one page (--cursor for the next)

Filters: ``--subject ID``, ``--subject-type T``, ``--action A``, ``--resource ID``,
``--resource-type T``, ``--decision permit|deny``, ``--endpoint E``, ``--request-id R``,
``--since TIME`` (inclusive), ``--until TIME`` (exclusive; ISO 8601, UTC when no zone).
Records are printed as JSON lines, every character a terminal could act on (controls, C1
controls, bidi overrides, line separators) written as a ``\\uXXXX`` escape. The database is
``PDP_DECISION_LOG_URL`` or ``$PDP_DATA_DIR/decisions.db``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from pdp.cli.datadir import warn_if_new_database
from pdp.cli.text import plain
from pdp.decision_log import DecisionFilter, DecisionReader, parse_time
from pdp.decision_log.ingest import catch_up
from pdp.decision_log.writer import SPOOL_DIR
from pdp.entities.database import open_database, sqlite_url
from pdp.errors import InvalidField, PDPError
from pdp.settings import Settings

__all__ = ["register"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "decisions", help="read the decision log", description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="decision log database URL (PDP_DECISION_LOG_URL)")
    common.add_argument("--data-dir", type=Path, help="data directory (PDP_DATA_DIR)")
    common.add_argument("--subject", help="subject id")
    common.add_argument("--subject-type", help="subject type")
    common.add_argument("--action", help="action name")
    common.add_argument("--resource", help="resource id")
    common.add_argument("--resource-type", help="resource type")
    common.add_argument("--decision", choices=["permit", "deny"])
    common.add_argument("--endpoint", help="evaluation, evaluations, search/subject, ...")
    common.add_argument("--request-id")
    common.add_argument("--since", help="ISO 8601 time (inclusive)")
    common.add_argument("--until", help="ISO 8601 time (exclusive)")
    actions = p.add_subparsers(dest="decisions_command", required=True, metavar="ACTION")

    tail = actions.add_parser("tail", parents=[common], help="the latest decisions")
    tail.add_argument("-n", "--lines", type=int, default=20, help="how many (default 20)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new ones")
    tail.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    tail.set_defaults(run=_guard(_tail))

    query = actions.add_parser("query", parents=[common], help="search the decision log")
    query.add_argument("--limit", type=int, default=100, help="records per page (max 1000)")
    query.add_argument("--cursor", help="next_cursor printed by the previous page")
    query.set_defaults(run=_guard(_query))


def _reader(args: argparse.Namespace) -> DecisionReader:
    overrides = {"data_dir": args.data_dir} if args.data_dir is not None else {}
    settings = Settings().model_copy(update=overrides)
    url = args.url or settings.decision_log_url or sqlite_url(
        settings.data_dir / "decisions.db")
    warn_if_new_database(url, "decision log", settings.data_dir)
    db = open_database(url)
    if args.url is None:  # the server's database: feed it what its segments hold first
        spool = settings.data_dir / SPOOL_DIR
        try:
            fed = catch_up(db, spool)
        except OSError as exc:
            fed, reason = False, str(exc)
        else:
            reason = "the database or a feeder did not answer"
        if not fed:
            print(f"pdp decisions: decisions still spooled in {spool} may be missing "
                  f"({reason})", file=sys.stderr)
    return DecisionReader(db)


def _filters(args: argparse.Namespace) -> DecisionFilter:
    return DecisionFilter(
        subject_type=args.subject_type, subject_id=args.subject, action=args.action,
        resource_type=args.resource_type, resource_id=args.resource,
        decision=None if args.decision is None else args.decision == "permit",
        endpoint=args.endpoint, request_id=args.request_id,
        since=parse_time(args.since, "--since"), until=parse_time(args.until, "--until"))


_NOT_ASCII_PRINTABLE = re.compile(r"[^\x20-\x7e]")


def _escape(match: re.Match[str]) -> str:
    """Characters Python does not call printable (controls: C0, DEL, C1; format characters:
    bidi overrides and isolates, zero-width and tag characters; line and paragraph separators;
    unusual spaces) as JSON escapes; any other character as it is."""
    char = match.group()
    if char.isprintable():
        return char
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def printable(text: str) -> str:
    """``text`` with every unprintable character escaped (in JSON text: the same value)."""
    return _NOT_ASCII_PRINTABLE.sub(_escape, text)


def printable_json(record: Any) -> str:
    """``record`` as one line of JSON that is safe on a terminal: non-ASCII text stays readable,
    anything unprintable is an escape (still valid JSON, decoding to the same value)."""
    return printable(json.dumps(record, ensure_ascii=False))


def _print(record: dict[str, Any]) -> None:
    print(printable_json(record), flush=True)


def _guard(action: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(action(args))
        except InvalidField as exc:  # a bad filter: a usage error, one line
            print(f"error: {printable(exc.message)}", file=sys.stderr)
            return 2
        except PDPError as exc:
            print(f"error: {printable(exc.message)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0

    return run


def _tail(args: argparse.Namespace) -> int:
    filters = _filters(args)  # a bad filter is refused before any database is opened
    reader = _reader(args)
    try:
        return _follow(reader, filters, args)
    finally:
        reader.close()


def _follow(reader: DecisionReader, filters: DecisionFilter, args: argparse.Namespace) -> int:
    records = reader.latest(max(args.lines, 0), filters) if args.lines > 0 else []
    for record in records:
        _print(record)
    if not args.follow:
        return 0
    last = int(records[-1]["id"]) if records else _last_id(reader)
    while True:
        time.sleep(args.interval)
        try:
            fresh = reader.after(last, filters)
        except PDPError as exc:  # the database went away: keep trying
            print(f"warning: {printable(exc.message)}", file=sys.stderr)
            continue
        for record in fresh:
            _print(record)
            last = int(record["id"])


def _last_id(reader: DecisionReader) -> int:
    latest = reader.latest(1)
    return int(latest[0]["id"]) if latest else 0


def _query(args: argparse.Namespace) -> int:
    filters = _filters(args)  # a bad filter is refused before any database is opened
    reader = _reader(args)
    try:
        page = reader.query(filters, limit=args.limit, cursor=args.cursor)
    finally:
        reader.close()
    for record in page.decisions:
        _print(record)
    if page.next_cursor is not None:
        print(f"next_cursor: {page.next_cursor}", file=sys.stderr)
    return 0
