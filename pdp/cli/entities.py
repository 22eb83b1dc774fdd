"""``pdp entities``: change and read the entity store of a PDP (or of many replicas).

    pdp entities import FILE [--replace]     upsert a JSON array of entities (entities.json
                                             format, or one entity per line) in one transaction
    pdp entities export [--type T]           print stored entities as entities.json
    pdp entities put JSON|-                  create or replace one entity (or an array)
    pdp entities get TYPE ID                 print one entity and who manages it
    pdp entities delete TYPE ID              delete an API-managed entity

The database is ``PDP_DATABASE_URL`` (``--database-url``) or ``$PDP_DATA_DIR/entities.db``.
Entities are validated against the schema of the policy set (``--policies``); a bad entity is
refused with the entity and attribute named, and nothing is written. Running PDPs see a change
within their poll interval. Exit status: 0 done, 1 refused or failed, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pdp.cli.datadir import warn_if_new_database
from pdp.cli.text import plain
from pdp.entities.manage import EntityAdmin
from pdp.entities.setup import open_sql_store
from pdp.entities.sql import SQLEntityStore
from pdp.entities.validate import EntityValidator
from pdp.errors import PDPError
from pdp.policies.compiled import compile_directory
from pdp.settings import Settings

__all__ = ["register"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "entities", help="change and read the entity store", description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database-url", help="entity store URL (PDP_DATABASE_URL)")
    common.add_argument("--data-dir", type=Path, help="data directory (PDP_DATA_DIR)")
    common.add_argument("--policies", type=Path,
                        help="policy set whose schema validates entities (PDP_POLICIES)")
    actions = p.add_subparsers(dest="entities_command", required=True, metavar="ACTION")

    imp = actions.add_parser("import", parents=[common], help="import entities from a file")
    imp.add_argument("file", help="JSON array or JSON lines of entities ('-': stdin)")
    imp.add_argument("--replace", action="store_true",
                     help="delete API-managed entities that are not in the file")
    imp.set_defaults(run=_import)

    exp = actions.add_parser("export", parents=[common], help="print entities as JSON")
    exp.add_argument("--type", help="only this entity type")
    exp.add_argument("--managed-by", choices=["file", "api"], help="only these entities")
    exp.set_defaults(run=_export)

    put = actions.add_parser("put", parents=[common], help="create or replace entities")
    put.add_argument("entity", help="entity JSON (an object or an array; '-': stdin)")
    put.set_defaults(run=_put)

    get = actions.add_parser("get", parents=[common], help="print one entity")
    get.add_argument("type")
    get.add_argument("id")
    get.set_defaults(run=_get)

    delete = actions.add_parser("delete", parents=[common], help="delete an entity")
    delete.add_argument("type")
    delete.add_argument("id")
    delete.set_defaults(run=_delete)


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("database_url", "data_dir", "policies"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings().model_copy(update=overrides)


@contextmanager
def _admin(args: argparse.Namespace, reading: bool = False) -> Iterator[EntityAdmin]:
    """The store the settings name, validated against the policy set's schema; closed after.

    ``reading``: the command only reads (or deletes), so a database that does not exist yet
    means it runs elsewhere than the server: warn before an empty one is created."""
    settings = _settings(args)
    compiled = compile_directory(settings.policies_dir())
    validator = EntityValidator(compiled.schema, compiled.schema_types)
    if reading:
        warn_if_new_database(SQLEntityStore.url_for(settings.database_url, settings.data_dir),
                             "entity store", settings.data_dir)
    admin = EntityAdmin(open_sql_store(settings), lambda: validator)
    try:
        yield admin
    finally:
        admin.store.close()


def _read(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    path = Path(source)
    return path.read_text(encoding="utf-8") if path.is_file() else source


def _documents(text: str) -> list[Any]:
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        try:
            value = json.loads(text)
            return value if isinstance(value, list) else [value]
        except json.JSONDecodeError:
            if stripped.startswith("["):
                raise
    return [json.loads(line) for line in text.splitlines() if line.strip()]


Action = Callable[[argparse.Namespace], int]


def _guard(action: Action) -> Action:
    def run(args: argparse.Namespace) -> int:
        try:
            return action(args)
        except PDPError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
        except (OSError, json.JSONDecodeError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return run


def _write(args: argparse.Namespace, source: str, replace: bool) -> int:
    docs = _documents(_read(source))
    with _admin(args) as admin:
        result = admin.put(docs, replace=replace)
    print(json.dumps(result.to_dict()))
    return 0


@_guard
def _import(args: argparse.Namespace) -> int:
    return _write(args, args.file, args.replace)


@_guard
def _put(args: argparse.Namespace) -> int:
    return _write(args, args.entity, False)


@_guard
def _export(args: argparse.Namespace) -> int:
    with _admin(args, reading=True) as admin:
        out = sys.stdout
        out.write("[")
        first = True
        for record in admin.store.export(entity_type=args.type, source=args.managed_by):
            out.write(("\n  " if first else ",\n  ")
                      + json.dumps(record.entity.to_cedar_json(), ensure_ascii=False))
            first = False
        out.write("\n]\n" if not first else "]\n")
    return 0


@_guard
def _get(args: argparse.Namespace) -> int:
    with _admin(args, reading=True) as admin:
        print(json.dumps(admin.get((args.type, args.id)).to_dict(), ensure_ascii=False))
    return 0


@_guard
def _delete(args: argparse.Namespace) -> int:
    with _admin(args, reading=True) as admin:
        result = admin.delete([(args.type, args.id)])
    if not result.changed:
        print(f"error: no API-managed entity {args.type}::{args.id!r}", file=sys.stderr)
        return 1
    print(json.dumps(result.to_dict()))
    return 0
