"""``pdp fmt PATH...``: format Cedar policy files in place with Cedar's formatter.

Each PATH is a ``.cedar`` file or a directory (every ``*.cedar`` file in it, recursively).
Schemas (``.cedarschema``, ``.cedarschema.json``) are not formatted: Cedar's schema formatter
is not available to this command, so a schema named on the command line is skipped with a
note saying so (directories are searched for ``*.cedar`` files only).
Comments and annotations are kept; a file whose comments or policies the formatter would
change is refused with an error, never rewritten.

``--check`` writes nothing: it lists the files that would change (``would reformat PATH``)
and exits 1 if there are any, for CI; ``--diff`` writes nothing either and prints a unified
diff of the changes instead (with ``--check`` too: the diff, and exit 1).

Exit status: 0 done (or, with ``--check``, nothing to change); 1 a file would change
(``--check``), does not parse (``path:line:column: message``) or cannot be read or formatted;
2 a PATH does not exist or names no Cedar file.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any

from pdp.cli.text import plain
from pdp.errors import PolicyLoadError
from pdp.policies.formatting import format_cedar

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "fmt", help="format Cedar policy files (.cedar) in place", description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if a file would be reformatted")
    p.add_argument("--diff", action="store_true",
                   help="write nothing; print the changes as a unified diff")
    p.add_argument("--line-width", type=int, default=80, help="maximum line length (80)")
    p.add_argument("--indent-width", type=int, default=2, help="indentation width (2)")
    p.set_defaults(run=run)


def _files(paths: list[Path]) -> list[Path] | None:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*.cedar") if p.is_file())
            if not inside:
                print(f"{path}: no *.cedar file", file=sys.stderr)
                return None
            found.extend(inside)
        elif path.is_file() and path.name.endswith((".cedarschema", ".cedarschema.json")):
            print(f"{path}: skipped: pdp fmt formats Cedar policies (.cedar) only, not schemas",
                  file=sys.stderr)
        elif path.is_file():
            found.append(path)
        else:
            print(f"{path}: no such file or directory", file=sys.stderr)
            return None
    return list(dict.fromkeys(found))


def run(args: argparse.Namespace) -> int:
    files = _files(args.paths)
    if files is None:
        return 2
    failed = changed = 0
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            formatted = format_cedar(text, str(path), line_width=args.line_width,
                                     indent_width=args.indent_width)
        except (OSError, UnicodeDecodeError) as exc:
            print(f"{path}: cannot read: {exc}", file=sys.stderr)
            failed += 1
            continue
        except PolicyLoadError as exc:
            for d in exc.diagnostics:
                print(str(d), file=sys.stderr)
            failed += 1
            continue
        if formatted == text:
            continue
        changed += 1
        if args.diff:
            sys.stdout.writelines(difflib.unified_diff(
                text.splitlines(keepends=True), formatted.splitlines(keepends=True),
                f"{path} (original)", f"{path} (formatted)"))
        if args.check or args.diff:
            print(f"would reformat {path}", file=sys.stderr if args.diff else sys.stdout)
        else:
            path.write_text(formatted, encoding="utf-8")
            print(f"reformatted {path}")
    verb = "would be reformatted" if args.check or args.diff else "reformatted"
    print(f"{changed} file(s) {verb}, {len(files) - changed - failed} unchanged"
          + (f", {failed} failed" if failed else ""), file=sys.stderr)
    return 1 if failed or (args.check and changed) else 0
