"""Command groups beyond the core ones (entities, links, decisions, gateway, mcp), in one place.

Each group names the third-party packages it needs beyond the core. When one of them is not
installed, the command is still listed and, when run, says which package is missing. Any other
``ImportError`` (a bug in this package, a broken dependency) is not caught here: it surfaces.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any

__all__ = ["OPTIONAL", "missing_package", "register"]

# command → (its module, the distributions it needs beyond the core, by import name)
OPTIONAL: dict[str, tuple[str, tuple[str, ...]]] = {
    "entities": ("pdp.cli.entities", ("sqlalchemy", "sqlmodel")),
    "links": ("pdp.cli.links", ("sqlalchemy", "sqlmodel")),
    "decisions": ("pdp.cli.decisions", ("sqlalchemy", "sqlmodel")),
    "gateway": ("pdp.cli.gateway", ("mcp", "httptools", "httpx", "uvicorn")),
    "mcp": ("pdp.cli.mcp", ("cedar_mcp_schema_generator",)),
}


def missing_package(packages: tuple[str, ...]) -> str | None:
    """The first of ``packages`` that is not installed (found without importing it), if any."""
    for name in packages:
        if importlib.util.find_spec(name) is None:
            return name
    return None


def register(sub: Any) -> None:
    """Register every optional command: the real one, or one that names the missing package."""
    for command, (module_name, packages) in OPTIONAL.items():
        missing = missing_package(packages)
        if missing is None:
            module: ModuleType = importlib.import_module(module_name)
            module.register(sub)
        else:
            _register_unavailable(sub, command, missing)


def _register_unavailable(sub: Any, command: str, package: str) -> None:
    # no option prefix: whatever follows the command is taken as-is, so it reaches ``run``
    p: argparse.ArgumentParser = sub.add_parser(
        command, add_help=False, prefix_chars="\0",
        help=f"(unavailable: the package {package!r} is not installed)")
    p.add_argument("rest", nargs="*", help=argparse.SUPPRESS)

    def run(args: argparse.Namespace) -> int:
        print(f"pdp {command}: needs the Python package {package!r}, which is not installed "
              f"(pip install authzen-cedar-pdp installs it)", file=sys.stderr)
        return 1

    p.set_defaults(run=run)
