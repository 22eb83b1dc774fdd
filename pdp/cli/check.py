"""``pdp check DIR...``: validate policy sets (policies, schema, entities) and print every
problem of every set.

Errors are printed to stderr one per line as ``path:line:column: message`` (line and column
where they are known), warnings as ``path:line:column: warning:
message``; on success a one-line summary goes to stdout. ``--format json`` prints instead one
document ``{"valid", "errors", "warnings", "summary"}`` to stdout, for CI tools.

With several directories, each set is checked and reported in turn (``--format json``: a list
of documents, one per directory, each with its ``directory``).

Exit status: 0 when every set is valid (warnings do not count unless ``--strict``), 1 when one
is invalid or cannot be read (a missing directory included).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pdp.cli.text import plain
from pdp.engine.native import native_reason
from pdp.errors import PolicyDiagnostic, PolicyLoadError
from pdp.policies.compiled import compile_directory
from pdp.policies.lint import lint

__all__ = ["register", "run", "diagnostic_path", "format_diagnostic", "refuse_to_start"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "check", help="validate policy-set directories", description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directories", nargs="+", type=Path, metavar="DIR")
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
    directories: list[Path] = args.directories
    if args.format == "json" and len(directories) > 1:
        documents = []
        code = 0
        for directory in directories:
            document, status = _check(directory, True, args.strict)
            documents.append({"directory": str(directory), **document})
            code = max(code, status)
        print(json.dumps(documents, indent=2))
        return code
    code = 0
    for directory in directories:
        document, status = _check(directory, args.format == "json", args.strict,
                                  len(directories) > 1)
        if args.format == "json":
            print(json.dumps(document, indent=2))
        code = max(code, status)
    return code


def _check(directory: Path, as_json: bool, strict: bool, multiple: bool = False,
           ) -> tuple[dict[str, Any], int]:
    """Check one set: its JSON document, or (text) print its report; and the exit status."""
    try:
        compiled = compile_directory(directory)
    except PolicyLoadError as exc:
        if not as_json:
            for d in exc.diagnostics:
                print(format_diagnostic(directory, d), file=sys.stderr)
        return {"valid": False,
                "errors": [dict(d.to_dict(), file=diagnostic_path(directory, d.file))
                           for d in exc.diagnostics],
                "warnings": [], "summary": None}, 1
    warnings = lint(compiled.policies, directory)
    not_native = native_reason(compiled)
    summary = {"version": compiled.version, "policies": len(compiled.policies),
               "entities": len(compiled.entities), "schema": compiled.schema is not None,
               "links": len(compiled.links), "warnings": len(warnings),
               "native": not_native is None, "native_reason": not_native}
    failed = bool(warnings) and strict
    document = {"valid": not failed, "errors": [],
                "warnings": [w.to_dict() for w in warnings], "summary": summary}
    if as_json:
        return document, 1 if failed else 0
    for w in warnings:
        print(str(w), file=sys.stderr)
    if failed:
        print(f"{directory}: {len(warnings)} warning(s), failing because of --strict",
              file=sys.stderr)
        return document, 1
    prefix = f"{directory}: " if multiple else ""
    print(f"{prefix}ok: {summary['policies']} policies, {summary['entities']} entities, "
          + (f"{summary['links']} template links, " if compiled.links else "")
          + f"schema: {'yes' if summary['schema'] else 'no'}, version {summary['version']}"
          + (f", {len(warnings)} warning(s)" if warnings else "")
          + ("" if not_native is None else
             f"; evaluated by cedarpy, not natively: {not_native}"))
    return document, 0
