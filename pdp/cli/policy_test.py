"""``pdp test DIR``: run the policy tests kept next to a policy set (``*.test.yaml`` ...).

The test-file format is described in :mod:`pdp.policies.testing`. Output follows pytest: one
line per failing case, ``FAILED path::case name - why`` (``-v``: one line per case,
``PASSED``/``FAILED``/``ERROR``), then a summary such as ``12 passed, 1 failed``.

The engine options a server takes from the environment (``PDP_NAMESPACE``,
``PDP_ACTION_PROPERTIES_KEY``, ``PDP_ENTITY_DEPTH``) apply here too.

Exit status (pytest's): 0 every case passed; 1 a case failed or could not be evaluated;
2 nothing was run because the policy set or a test file is invalid (each problem printed as
``path:line:column: message``); 5 the directory has no test files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pdp.cli.check import format_diagnostic
from pdp.engine import EngineOptions
from pdp.errors import PolicyDiagnostic, PolicyLoadError
from pdp.policies.compiled import compile_directory
from pdp.policies.testing import (
    TEST_FILE_SUFFIXES,
    PolicyTestFile,
    discover,
    load_test_file,
    run_tests,
)
from pdp.settings import Settings

__all__ = ["register", "run", "EXIT_NO_TESTS"]

EXIT_NO_TESTS = 5


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "test", help="run the policy tests of a policy-set directory", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directory", type=Path)
    p.add_argument("-v", "--verbose", action="store_true", help="print one line per case")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    directory: Path = args.directory
    try:
        compiled = compile_directory(directory)
    except PolicyLoadError as exc:
        for d in exc.diagnostics:
            print(format_diagnostic(directory, d), file=sys.stderr)
        print(f"error: the policy set {directory} is invalid; no test was run", file=sys.stderr)
        return 2
    paths = discover(directory)
    if not paths:
        print(f"no tests found in {directory} (files named "
              f"{', '.join('*' + s for s in TEST_FILE_SUFFIXES)})", file=sys.stderr)
        return EXIT_NO_TESTS
    files: list[PolicyTestFile] = []
    problems: list[PolicyDiagnostic] = []
    for path in paths:
        try:
            files.append(load_test_file(path))
        except PolicyLoadError as exc:
            problems.extend(exc.diagnostics)
    if problems:
        for d in problems:
            print(format_diagnostic(Path("."), d), file=sys.stderr)
        print(f"error: {len(problems)} problem(s) in the test files; no test was run",
              file=sys.stderr)
        return 2
    settings = Settings()
    report = run_tests(compiled, files,
                       EngineOptions.from_settings(settings, decision_cache=False))
    for r in report.results:
        label = f"{r.case.file}::{r.case.name}"
        if r.status == "passed":
            if args.verbose:
                print(f"PASSED {label}")
        else:
            print(f"{r.status.upper()} {label} - {r.message}")
    counts = [(report.count("failed"), "failed"), (report.count("passed"), "passed"),
              (report.count("error"), "error" if report.count("error") == 1 else "errors")]
    print(", ".join(f"{n} {what}" for n, what in counts if n) + f" in {len(files)} file(s)")
    return 0 if report.ok else 1
