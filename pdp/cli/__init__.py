"""The ``pdp`` command line: ``serve``, ``check``, ``test``, ``eval``, ``fmt`` and the commands of
later modules.

Each subcommand lives in its own module exposing ``register(subparsers)``; the parser is
assembled here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pdp.cli import check, evaluate, fmt, keys, optional, policy_test, serve

__all__ = ["main", "build_parser"]

_MODULES = [serve, check, policy_test, evaluate, fmt, keys]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pdp", description="OpenID AuthZEN 1.0 Policy Decision Point on Cedar.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _MODULES:
        module.register(sub)
    optional.register(sub)  # command groups that need packages beyond the core
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
