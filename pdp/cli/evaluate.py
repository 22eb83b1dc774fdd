"""``pdp eval``: decide one AuthZEN evaluation (JSON on stdin or as an argument) offline."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pdp.errors import PDPError, PolicyLoadError
from pdp.service import PDPService
from pdp.settings import Settings

__all__ = ["register"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "eval", help="decide an evaluation or evaluations request offline", description=__doc__)
    p.add_argument("request", nargs="?", help="request JSON (default: read stdin)")
    p.add_argument("--policies", type=Path, help="policy-set directory")
    p.add_argument("--explain", action="store_true", help="include reasons")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # offline: the policy set's entities.json only; never write to a server's database
    overrides: dict[str, Any] = {"decision_log": "off", "entity_store": "memory"}
    if args.policies is not None:
        overrides["policies"] = args.policies
    settings = Settings().model_copy(update=overrides)
    try:
        service = PDPService.from_settings(settings)
        body = json.loads(args.request if args.request is not None else sys.stdin.read())
        result = service.evaluations(body, explain=args.explain)
    except PolicyLoadError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    except (PDPError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0
