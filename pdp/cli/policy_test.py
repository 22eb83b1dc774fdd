"""``pdp test DIR...``: run the policy tests kept next to policy sets (``*.test.yaml`` ...).

The test-file format is described in the documentation (Writing policies). Output follows
pytest: one line per failing case, ``FAILED path:line::case name - why`` (``-v``: one line per
case, ``PASSED``/``FAILED``/``ERROR``), then a summary such as ``1 failed, 12 passed``.
``--run PATTERN`` runs only the cases whose name matches the regular expression (searched,
as ``opa test --run`` does). ``--format json`` prints one JSON document instead, ``--format
junit`` JUnit XML, for CI dashboards.

Every case that can be decided is decided in one run: a malformed case is reported with the
others' results, never hiding them.

The engine options a server takes from the environment (``PDP_NAMESPACE``,
``PDP_ACTION_PROPERTIES_KEY``, ``PDP_ENTITY_DEPTH``) apply here too.

Exit status (pytest's): 0 every case passed; 1 a case failed or could not be evaluated;
2 a policy set or a test file is invalid (each problem printed as ``path:line:column:
message``; the policy set's tests are not run when the set is invalid); 5 no test files, or
no case matches ``--run``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from pdp.cli.check import format_diagnostic
from pdp.cli.text import plain
from pdp.engine import EngineOptions
from pdp.errors import PolicyDiagnostic, PolicyLoadError
from pdp.policies.compiled import compile_directory
from pdp.service.testing import (
    TEST_FILE_SUFFIXES,
    CaseResult,
    PolicyTestFile,
    discover,
    read_test_file,
    run_tests,
)
from pdp.settings import Settings

__all__ = ["register", "run", "EXIT_NO_TESTS"]

EXIT_NO_TESTS = 5


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "test", help="run the policy tests of policy-set directories",
        description=plain(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directories", nargs="+", type=Path, metavar="DIR")
    p.add_argument("-v", "--verbose", action="store_true", help="print one line per case")
    p.add_argument("--run", metavar="PATTERN", dest="pattern",
                   help="only the cases whose name matches this regular expression")
    p.add_argument("--format", choices=("text", "json", "junit"), default="text",
                   help="text (default), json (one document) or junit (JUnit XML)")
    p.set_defaults(run=run)


@dataclass
class _Outcome:
    results: list[CaseResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # path:line:column: message
    files: int = 0


def _load(directory: Path, pattern: re.Pattern[str] | None, out: _Outcome) -> None:
    try:
        compiled = compile_directory(directory)
    except PolicyLoadError as exc:
        out.problems.extend(format_diagnostic(directory, d) for d in exc.diagnostics)
        out.problems.append(f"{directory}: the policy set is invalid; its tests were not run")
        return
    files: list[PolicyTestFile] = []
    problems: list[PolicyDiagnostic] = []
    for path in discover(directory):
        out.files += 1
        try:
            test_file, found = read_test_file(path)
        except PolicyLoadError as exc:
            problems.extend(exc.diagnostics)
            continue
        problems.extend(found)
        if pattern is not None:
            test_file = PolicyTestFile(
                test_file.path, tuple(c for c in test_file.cases if pattern.search(c.name)),
                test_file.entities)
        files.append(test_file)
    out.problems.extend(format_diagnostic(Path("."), d) for d in problems)
    settings = Settings()
    report = run_tests(compiled, files,
                       EngineOptions.from_settings(settings, decision_cache=False))
    out.results.extend(report.results)


def _place(r: CaseResult) -> str:
    line = f":{r.case.line}" if r.case.line is not None else ""
    return f"{r.case.file}{line}::{r.case.name}"


def _summary(out: _Outcome) -> dict[str, int]:
    counts = {status: sum(1 for r in out.results if r.status == status)
              for status in ("failed", "passed", "error")}
    counts["invalid"] = len(out.problems)
    return counts


def _as_json(out: _Outcome, seconds: float) -> str:
    return json.dumps({
        "ok": not out.problems and all(r.status == "passed" for r in out.results),
        "summary": {**_summary(out), "files": out.files, "seconds": round(seconds, 3)},
        "problems": out.problems,
        "cases": [{"file": r.case.file, "line": r.case.line, "name": r.case.name,
                   "status": r.status, "message": r.message} for r in out.results]}, indent=2)


def _as_junit(out: _Outcome, seconds: float) -> str:
    counts = _summary(out)
    suites = ElementTree.Element("testsuites", name="pdp test", tests=str(len(out.results)),
                                 failures=str(counts["failed"]),
                                 errors=str(counts["error"] + counts["invalid"]),
                                 time=f"{seconds:.3f}")
    by_file: dict[str, ElementTree.Element] = {}
    for r in out.results:
        suite = by_file.get(r.case.file)
        if suite is None:
            suite = by_file[r.case.file] = ElementTree.SubElement(
                suites, "testsuite", name=r.case.file)
        case = ElementTree.SubElement(suite, "testcase", classname=r.case.file, name=r.case.name,
                                      file=r.case.file)
        if r.case.line is not None:
            case.set("line", str(r.case.line))
        if r.status != "passed":
            ElementTree.SubElement(case, "failure" if r.status == "failed" else "error",
                                   message=r.message).text = r.message
    if out.problems:
        suite = ElementTree.SubElement(suites, "testsuite", name="invalid test files")
        for problem in out.problems:
            case = ElementTree.SubElement(suite, "testcase", classname="pdp test",
                                          name=problem.split(": ", 1)[0])
            ElementTree.SubElement(case, "error", message=problem).text = problem
    for suite in suites:
        cases = list(suite)
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
        suite.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
    ElementTree.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(
        suites, encoding="unicode")


def run(args: argparse.Namespace) -> int:
    try:
        pattern = re.compile(args.pattern) if args.pattern is not None else None
    except re.error as exc:
        print(f"error: --run {args.pattern!r} is not a regular expression: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    out = _Outcome()
    for directory in args.directories:
        if not directory.is_dir():
            out.problems.append(f"{directory}: not a directory")
            continue
        _load(directory, pattern, out)
    seconds = time.perf_counter() - started
    if args.format == "json":
        print(_as_json(out, seconds))
    elif args.format == "junit":
        print(_as_junit(out, seconds))
    else:
        for problem in out.problems:
            print(problem, file=sys.stderr)
        for r in out.results:
            if r.status == "passed":
                if args.verbose:
                    print(f"PASSED {_place(r)}")
            else:
                print(f"{r.status.upper()} {_place(r)} - {r.message}")
    if not out.files and not out.problems:
        print(f"no tests found in {', '.join(map(str, args.directories))} (files named "
              f"{', '.join('*' + s for s in TEST_FILE_SUFFIXES)})", file=sys.stderr)
        return EXIT_NO_TESTS
    if not out.results and not out.problems:
        print(f"no case matches --run {args.pattern!r}", file=sys.stderr)
        return EXIT_NO_TESTS
    if args.format == "text":
        counts = _summary(out)
        parts = [(counts["failed"], "failed"), (counts["passed"], "passed"),
                 (counts["error"], "error" if counts["error"] == 1 else "errors"),
                 (counts["invalid"], "problem(s)")]
        print(", ".join(f"{n} {what}" for n, what in parts if n) + f" in {out.files} file(s)")
    if out.problems:
        return 2
    return 0 if all(r.status == "passed" for r in out.results) else 1
