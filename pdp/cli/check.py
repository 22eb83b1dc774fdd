"""``pdp check DIR``: validate a policy set and print every problem as file:line:column."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pdp.errors import PolicyLoadError
from pdp.policies.compiled import compile_directory

__all__ = ["register"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "check", help="validate a policy-set directory", description=__doc__)
    p.add_argument("directory", type=Path)
    p.add_argument("--json", action="store_true", help="print diagnostics as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        compiled = compile_directory(args.directory)
    except PolicyLoadError as exc:
        if args.json:
            print(json.dumps(exc.to_dict(), indent=2))
        else:
            for d in exc.diagnostics:
                print(str(d), file=sys.stderr)
        return 1
    summary = {"version": compiled.version, "policies": len(compiled.policies),
               "entities": len(compiled.entities), "schema": compiled.schema is not None}
    print(json.dumps(summary) if args.json else
          f"ok: {summary['policies']} policies, {summary['entities']} entities, "
          f"schema: {'yes' if summary['schema'] else 'no'}, version {summary['version']}")
    return 0
