"""``pdp check DIR``: validate a policy set (policies, schema, entities) and print every problem.

Errors are printed to stderr one per line as ``path:line:column: message`` (line and column
where they are known), warnings (:mod:`pdp.policies.lint`) as ``path:line:column: warning:
message``; on success a one-line summary goes to stdout. ``--format json`` prints instead one
document ``{"valid", "errors", "warnings", "summary"}`` to stdout, for CI tools.

Exit status: 0 when the set is valid (warnings do not count unless ``--strict``), 1 when it is
invalid or cannot be read (a missing directory included).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pdp.errors import PolicyDiagnostic, PolicyLoadError
from pdp.policies.compiled import compile_directory
from pdp.policies.lint import lint

__all__ = ["register", "run", "diagnostic_path", "format_diagnostic", "refuse_to_start"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "check", help="validate a policy-set directory", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directory", type=Path)
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text (default): file:line:column lines; json: one document")
    p.add_argument("--json", action="store_const", const="json", dest="format",
                   help="same as --format json")
    p.add_argument("--strict", action="store_true",
                   help="fail (exit 1) on warnings too")
    p.set_defaults(run=run)


def diagnostic_path(directory: Path, file: str) -> str:
    """Where a diagnostic's file is, as the user named the directory (``policies/x/a.cedar``).

    Diagnostics about the set as a whole (``<schema>``, the directory itself) are left alone."""
    if file.startswith("<") or file == str(directory) or Path(file).is_absolute():
        return file
    return str(directory / file)


def format_diagnostic(directory: Path, d: PolicyDiagnostic) -> str:
    """``path:line:column: message`` (the policy named when known)."""
    return str(PolicyDiagnostic(diagnostic_path(directory, d.file), d.message, d.line,
                                d.column, d.policy))


def refuse_to_start(directory: Path, exc: PolicyLoadError) -> int:
    """What ``pdp serve`` and ``pdp gateway`` say when the policy set is invalid; exit 1."""
    print(f"cannot start: invalid policy set {directory}", file=sys.stderr)
    for d in exc.diagnostics:
        print(f"  {format_diagnostic(directory, d)}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    directory: Path = args.directory
    as_json = args.format == "json"
    try:
        compiled = compile_directory(directory)
    except PolicyLoadError as exc:
        if as_json:
            print(json.dumps({
                "valid": False,
                "errors": [dict(d.to_dict(), file=diagnostic_path(directory, d.file))
                           for d in exc.diagnostics],
                "warnings": [], "summary": None}, indent=2))
        else:
            for d in exc.diagnostics:
                print(format_diagnostic(directory, d), file=sys.stderr)
        return 1
    warnings = lint(compiled.policies, directory)
    summary = {"version": compiled.version, "policies": len(compiled.policies),
               "entities": len(compiled.entities), "schema": compiled.schema is not None,
               "links": len(compiled.links), "warnings": len(warnings)}
    failed = bool(warnings) and args.strict
    if as_json:
        print(json.dumps({"valid": not failed, "errors": [],
                          "warnings": [w.to_dict() for w in warnings], "summary": summary},
                         indent=2))
        return 1 if failed else 0
    for w in warnings:
        print(str(w), file=sys.stderr)
    if failed:
        print(f"{directory}: {len(warnings)} warning(s), failing because of --strict",
              file=sys.stderr)
        return 1
    print(f"ok: {summary['policies']} policies, {summary['entities']} entities, "
          + (f"{summary['links']} template links, " if compiled.links else "")
          + f"schema: {'yes' if summary['schema'] else 'no'}, version {summary['version']}"
          + (f", {len(warnings)} warning(s)" if warnings else ""))
    return 0
