"""``pdp links``: add, remove and list the template links held in the entity store.

    pdp links add JSON|FILE|-        add links in the Cedar CLI's template-linked format
                                     ({"template_id", "link_id", "args"}, one or an array)
    pdp links remove LINK_ID...      remove stored links
    pdp links list                   print every link in force (the policy set's
                                     *.links.json files' and the stored ones)

The database is ``PDP_DATABASE_URL`` (``--database-url``) or ``$PDP_DATA_DIR/entities.db``.
Links are checked against the policy set (``--policies``): the template exists, its slots are
exactly filled, each entity's type is declared by the schema, the id is new. Running PDPs
decide with a change within their poll interval, without a reload. Exit status: 0 done,
1 refused or failed, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pdp.cli.entities import _documents, _guard, _read, _settings
from pdp.cli.text import plain
from pdp.entities.manage_links import LinkAdmin
from pdp.entities.setup import open_sql_store
from pdp.policies.compiled import compile_directory

__all__ = ["register"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "links", help="add, remove and list stored template links", description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database-url", help="entity store URL (PDP_DATABASE_URL)")
    common.add_argument("--data-dir", type=Path, help="data directory (PDP_DATA_DIR)")
    common.add_argument("--policies", type=Path,
                        help="policy set the links belong to (PDP_POLICIES)")
    actions = p.add_subparsers(dest="links_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", parents=[common], help="add template links")
    add.add_argument("links", help="link JSON (an object or an array), a file, or '-'")
    add.set_defaults(run=_add)
    remove = actions.add_parser("remove", parents=[common], help="remove stored links")
    remove.add_argument("link_ids", nargs="+", metavar="LINK_ID")
    remove.set_defaults(run=_remove)
    listing = actions.add_parser("list", parents=[common], help="print the links in force")
    listing.set_defaults(run=_list)


def _admin(args: argparse.Namespace) -> LinkAdmin:
    settings = _settings(args)
    compiled = compile_directory(settings.policies_dir())
    return LinkAdmin(open_sql_store(settings), lambda: compiled)


@_guard
def _add(args: argparse.Namespace) -> int:
    docs = _documents(_read(args.links))
    admin = _admin(args)
    try:
        result = admin.add(docs)
    finally:
        admin.store.close()
    print(json.dumps(result.to_dict()))
    return 0


@_guard
def _remove(args: argparse.Namespace) -> int:
    admin = _admin(args)
    try:
        result = admin.remove(args.link_ids)
    finally:
        admin.store.close()
    print(json.dumps(result.to_dict()))
    return 0


@_guard
def _list(args: argparse.Namespace) -> int:
    admin = _admin(args)
    try:
        found = admin.list()
    finally:
        admin.store.close()
    sys.stdout.write(json.dumps(found, indent=2, ensure_ascii=False) + "\n")
    return 0
