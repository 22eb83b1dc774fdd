"""``pdp keys``: make and hash API keys for PEPs and administrators (AuthZEN 1.0 section 10).

``pdp keys new [--name NAME] [--admin]`` prints a new random key (once: only its hash is ever
configured) and the ``NAME=sha256:HEX`` entry to add to ``PDP_API_KEYS`` (or
``PDP_ADMIN_API_KEYS`` with ``--admin``). ``pdp keys hash [--name NAME]`` reads a key from
standard input and prints its entry (or only ``sha256:HEX`` without a name).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pdp.auth.keys import entry_for, hash_key, new_key
from pdp.cli.text import plain

__all__ = ["register"]

_SHORT = 20


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "keys", help="make and hash API keys", description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    keys = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    new = keys.add_parser("new", help="a new random key and its configuration entry")
    new.add_argument("--name", default="pep", help="the key's name in logs (default: pep)")
    new.add_argument("--admin", action="store_true", help="an admin key (PDP_ADMIN_API_KEYS)")
    new.set_defaults(run=_new)
    hashed = keys.add_parser("hash", help="the configuration entry of a key read from stdin")
    hashed.add_argument("--name", help="prefix the entry with NAME=")
    hashed.set_defaults(run=_hash)


def _new(args: argparse.Namespace) -> int:
    key = new_key()
    try:
        entry = entry_for(args.name, key)
    except ValueError as exc:
        print(f"pdp keys: {exc}", file=sys.stderr)
        return 2
    setting = "PDP_ADMIN_API_KEYS" if args.admin else "PDP_API_KEYS"
    print(f"key:   {key}")
    print(f"entry: {entry}")
    print(f"The key is shown only now: give it to the {'administrator' if args.admin else 'PEP'}"
          f" (Authorization: Bearer <key>) and add the entry to {setting} (comma-separated).",
          file=sys.stderr)
    return 0


def _hash(args: argparse.Namespace) -> int:
    key = sys.stdin.readline().rstrip("\r\n")
    if not key:
        print("pdp keys hash: no key on standard input", file=sys.stderr)
        return 2
    if len(key) < _SHORT:
        print(f"pdp keys hash: warning: a {len(key)}-character key is guessable; use "
              "`pdp keys new`", file=sys.stderr)
    try:
        print(entry_for(args.name, key) if args.name else hash_key(key))
    except ValueError as exc:
        print(f"pdp keys hash: {exc}", file=sys.stderr)
        return 2
    return 0
