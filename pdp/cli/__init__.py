"""The ``pdp`` command line: ``serve``, ``check``, ``test``, ``eval``, ``fmt``, ``keys``,
``settings`` and the optional command groups.

Each subcommand lives in its own module exposing ``register(subparsers)``; the parser is
assembled here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pdp.cli import check, evaluate, fmt, keys, optional, policy_test, serve, settings_reference

__all__ = ["main", "build_parser", "version"]

_MODULES = [serve, check, policy_test, evaluate, fmt, keys, settings_reference]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pdp", description="OpenID AuthZEN 1.0 Policy Decision Point on Cedar.")
    parser.add_argument("--version", action="version", version=f"pdp {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _MODULES:
        module.register(sub)
    optional.register(sub)  # command groups that need packages beyond the core
    return parser


def version() -> str:
    """The installed distribution's version (``0+unknown`` when run from a bare source tree)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as distribution_version

    try:
        return distribution_version("authzen-cedar-pdp")
    except PackageNotFoundError:
        return "0+unknown"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
