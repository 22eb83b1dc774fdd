"""Policy tests: expected decisions kept next to the policies, run by ``pdp test DIR``.

A policy set's tests are the files named ``*.test.yaml``, ``*.test.yml`` or ``*.test.json``
in the policy-set directory (the loader reads only ``*.cedar``, the schema and
``entities.json``, so they never change the policy set). Each file holds one object::

    # todo.test.yaml
    entities:                # optional: Cedar entity JSON added for every case of the file
      - uid: {type: user, id: squanchy}
        attrs: {email: squanchy@the-citadel.com, roles: [viewer]}
    cases:                   # required, at least one
      - name: rick may delete any todo          # required, unique in the file
        request:                                # required: an AuthZEN evaluation request
          subject: {type: user, id: rick}
          action: {name: can_delete_todo}
          resource: {type: todo, id: "1", properties: {ownerID: morty@the-citadel.com}}
          context: {}                           # optional
        decision: permit                        # required: permit/allow/true or deny/false
        policies: [admin-deletes-any-todo]      # optional: the exact set of determining ids
        entities: []                            # optional: entities for this case only

The extra entities are added to those of ``entities.json``; one with the uid of an entity of
``entities.json`` (or, for a case, of the file's ``entities``) replaces it for that file
(case). With a schema they must conform to it. ``policies`` compares, in any order, the ids of
the determining policies: their ``@id``, or ``file:line`` for a policy without a unique
``@id`` (what ``pdp eval`` shows); ``[]`` says that no policy determined the decision (a deny
because nothing permits). Unknown keys are errors, so a misspelt expectation never passes
silently.

Every case is decided by the server's decision path: the request is parsed by the AuthZEN
parser and decided by :class:`~pdp.engine.Engine` on the compiled set, with an in-memory
entity store holding ``entities.json`` plus the extra entities. A case passes when the
decision (and, if given, the determining policies) are as expected. A request that cannot be
decided as meant is an *error*, never a passing deny: with a schema, an action or a subject or
resource type the schema does not declare (a typo would otherwise be denied for want of a
matching policy); a request the engine refuses to translate; extra entities that do not
conform to the schema. A policy that fails to evaluate (reading an attribute of an entity
that does not exist, say) is skipped by Cedar, as in the server; such errors are shown in the
message of a failing case but do not make it an error.

Problems with a test file itself (not YAML/JSON, unknown or missing keys, wrong types, a
request that is not a valid AuthZEN request, duplicate case names) are reported by
:func:`load_test_file` as :class:`~pdp.errors.PolicyLoadError` diagnostics naming the file,
the case and, in YAML files, the line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pdp.authzen.evaluation import parse_evaluation
from pdp.authzen.model import Decision, EvaluationRequest
from pdp.engine import Engine, EngineOptions
from pdp.entities.model import EntityUid, StoredEntity
from pdp.entities.store import InMemoryEntityStore
from pdp.entities.validate import EntityValidator
from pdp.errors import EntityError, PolicyDiagnostic, PolicyLoadError, RequestError
from pdp.policies.compiled import CompiledPolicySet

__all__ = [
    "TEST_FILE_SUFFIXES",
    "PolicyTestCase",
    "PolicyTestFile",
    "CaseResult",
    "PolicyTestReport",
    "discover",
    "load_test_file",
    "read_test_file",
    "run_tests",
]

TEST_FILE_SUFFIXES = (".test.yaml", ".test.yml", ".test.json")
_FILE_KEYS = {"entities", "cases"}
_CASE_KEYS = {"name", "request", "decision", "policies", "entities"}
_DECISIONS: Mapping[str, bool] = {"permit": True, "allow": True, "true": True,
                                  "deny": False, "false": False}
_POLICY_ERROR = "error while evaluating policy"


@dataclass(frozen=True, slots=True)
class PolicyTestCase:
    """One expected decision."""

    file: str
    name: str
    request: EvaluationRequest
    decision: bool
    policies: frozenset[str] | None = None  # None: not checked
    entities: tuple[Mapping[str, Any], ...] = ()
    line: int | None = None  # where the case starts (YAML files)


@dataclass(frozen=True, slots=True)
class PolicyTestFile:
    path: Path
    cases: tuple[PolicyTestCase, ...]
    entities: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class CaseResult:
    """``status`` is ``passed``, ``failed`` or ``error``; ``message`` says why when not passed."""

    case: PolicyTestCase
    status: str
    message: str = ""
    decision: Decision | None = None


@dataclass(frozen=True, slots=True)
class PolicyTestReport:
    results: tuple[CaseResult, ...] = field(default=())

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def ok(self) -> bool:
        return all(r.status == "passed" for r in self.results)


def discover(directory: Path | str) -> list[Path]:
    """The test files of a policy-set directory, by name."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir()
                  if p.is_file() and p.name.endswith(TEST_FILE_SUFFIXES)
                  and not p.name.startswith("."))


# -- reading test files ---------------------------------------------------------------------


def load_test_file(path: Path, name: str | None = None) -> PolicyTestFile:
    """Read and check one test file; raise PolicyLoadError listing every problem in it.

    ``name`` is how diagnostics name the file (default: ``path`` as given)."""
    test_file, problems = read_test_file(path, name)
    if problems:
        raise PolicyLoadError(problems)
    return test_file


def read_test_file(path: Path, name: str | None = None,
                   ) -> tuple[PolicyTestFile, list[PolicyDiagnostic]]:
    """The well-formed cases of one test file and the problems of the others, so that one run
    reports every problem and still decides every case it can. A file that cannot be read or
    parsed at all raises PolicyLoadError."""
    shown = name if name is not None else str(path)
    problems: list[PolicyDiagnostic] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyLoadError([PolicyDiagnostic(shown, f"cannot read: {exc}")]) from None
    doc, lines = _parse(shown, path.name, text)
    if not isinstance(doc, dict):
        raise PolicyLoadError([PolicyDiagnostic(
            shown, "a test file must hold an object with `cases` (and optional `entities`)",
            1, 1)])
    for key in sorted(set(doc) - _FILE_KEYS, key=str):
        problems.append(PolicyDiagnostic(shown, f"unknown key `{key}` (expected: cases, "
                                                "entities)", 1, 1))
    entities = _entity_list(doc.get("entities", []), shown, "`entities`", None, problems)
    raw_cases = doc.get("cases")
    cases: list[PolicyTestCase] = []
    if not isinstance(raw_cases, list) or not raw_cases:
        problems.append(PolicyDiagnostic(shown, "`cases` must be a non-empty list", 1, 1))
        raw_cases = []
    whole_file = bool(problems)  # the file's own keys or entities are wrong: run none of it
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_cases):
        line = lines[i] if i < len(lines) else None
        case = _case(shown, i, raw, line, problems)
        if case is None:
            continue
        if case.name in seen:
            problems.append(PolicyDiagnostic(
                shown, f"case {case.name!r}: the name is used by case #{seen[case.name] + 1} too",
                line, 1 if line else None))
            continue
        seen[case.name] = i
        cases.append(case)
    return PolicyTestFile(path, () if whole_file else tuple(cases), entities), problems


def _parse(shown: str, filename: str, text: str) -> tuple[Any, list[int]]:
    """The document and, for YAML, the line where each case starts."""
    if filename.endswith(".json"):
        try:
            return json.loads(text), []
        except json.JSONDecodeError as exc:
            raise PolicyLoadError([PolicyDiagnostic(
                shown, f"malformed JSON: {exc.msg}", exc.lineno, exc.colno)]) from None
    try:
        doc = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyLoadError([PolicyDiagnostic(
            shown, f"malformed YAML: {problem}", mark.line + 1 if mark else None,
            mark.column + 1 if mark else None)]) from None
    lines: list[int] = []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "cases" and isinstance(value, yaml.SequenceNode):
                lines = [item.start_mark.line + 1 for item in value.value]
    return doc, lines


def _case(shown: str, i: int, raw: Any, line: int | None,
          problems: list[PolicyDiagnostic]) -> PolicyTestCase | None:
    column = 1 if line is not None else None
    label = f"case #{i + 1}"

    def problem(message: str) -> None:
        problems.append(PolicyDiagnostic(shown, f"{label}: {message}", line, column))

    if not isinstance(raw, dict):
        problem("must be an object with `name`, `request` and `decision`")
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        problem("`name` is required and must be a non-empty string")
        return None
    label = f"case {name!r}"
    before = len(problems)
    for key in sorted(set(raw) - _CASE_KEYS, key=str):
        problem(f"unknown key `{key}` (expected: {', '.join(sorted(_CASE_KEYS))})")
    request: EvaluationRequest | None = None
    if "request" not in raw:
        problem("`request` is required")
    else:
        try:
            request = parse_evaluation(raw["request"])
        except RequestError as exc:
            problem(f"invalid request: {exc.message}")
    decision = raw.get("decision")
    if isinstance(decision, bool):
        expected = decision
    elif isinstance(decision, str) and decision.strip().lower() in _DECISIONS:
        expected = _DECISIONS[decision.strip().lower()]
    else:
        problem(("`decision` must be" if "decision" in raw else "`decision` is required:")
                + " permit, allow, true, deny or false")
        expected = False
    policies: frozenset[str] | None = None
    if "policies" in raw:
        ids = raw["policies"]
        if not isinstance(ids, list) or not all(isinstance(p, str) for p in ids):
            problem("`policies` must be a list of policy ids (strings)")
        else:
            policies = frozenset(ids)
    entities = _entity_list(raw.get("entities", []), shown, "`entities`", label, problems,
                            line)
    if len(problems) > before or request is None:
        return None
    return PolicyTestCase(shown, name, request, expected, policies, entities, line)


def _entity_list(value: Any, shown: str, what: str, label: str | None,
                 problems: list[PolicyDiagnostic], line: int | None = 1,
                 ) -> tuple[Mapping[str, Any], ...]:
    prefix = f"{label}: " if label else ""
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        problems.append(PolicyDiagnostic(
            shown, f"{prefix}{what} must be a list of Cedar entities (objects with `uid`, "
                   "`attrs`, `parents`)", line, 1 if line else None))
        return ()
    return tuple(value)


# -- running --------------------------------------------------------------------------------


def run_tests(compiled: CompiledPolicySet, files: Sequence[PolicyTestFile],
              options: EngineOptions | None = None) -> PolicyTestReport:
    """Decide every case of ``files`` against ``compiled``; never raises for a case."""
    options = (options or EngineOptions()).model_copy(update={"decision_cache_bytes": 0})
    validator = EntityValidator(compiled.schema, compiled.schema_types)
    base = {e.uid: e for e in (StoredEntity.from_cedar_json(doc) for doc in compiled.entities)}
    results: list[CaseResult] = []
    for test_file in files:
        try:
            file_entities = _merge(base, validator.validate(test_file.entities))
        except EntityError as exc:
            results.extend(CaseResult(c, "error", f"file entities: {exc.message}")
                           for c in test_file.cases)
            continue
        shared = _engine(compiled, file_entities, options)
        for case in test_file.cases:
            engine = shared
            if case.entities:
                try:
                    extra = validator.validate(case.entities)
                except EntityError as exc:
                    results.append(CaseResult(case, "error", f"case entities: {exc.message}"))
                    continue
                engine = _engine(compiled, _merge(file_entities, extra), options)
            undeclared = _undeclared(case.request, compiled, options.namespace)
            if undeclared:
                results.append(CaseResult(case, "error", undeclared))
                continue
            results.append(_judge(case, engine.decide([case.request])[0], compiled))
    return PolicyTestReport(tuple(results))


def _merge(base: Mapping[EntityUid, StoredEntity], extra: Sequence[StoredEntity],
           ) -> dict[EntityUid, StoredEntity]:
    merged = dict(base)
    merged.update((e.uid, e) for e in extra)
    return merged


def _undeclared(request: EvaluationRequest, compiled: CompiledPolicySet, namespace: str) -> str:
    """Why the schema cannot apply to ``request`` (a misspelt action or type would otherwise
    be a deny that passes), or ``""``."""
    types = compiled.schema_types
    if types is None:
        return ""
    actions = types.action_names(namespace or None)
    if request.action.name not in actions:
        return (f"action `{request.action.name}` is not declared in the schema (actions: "
                f"{', '.join(actions)})")
    prefix = f"{namespace}::" if namespace else ""
    declared = types.entity_type_names()
    for role, entity in (("subject", request.subject), ("resource", request.resource)):
        if prefix + entity.type not in declared:
            return (f"{role} type `{entity.type}` is not declared in the schema (types: "
                    f"{', '.join(declared)})")
    return ""


def _engine(compiled: CompiledPolicySet, entities: Mapping[EntityUid, StoredEntity],
            options: EngineOptions) -> Engine:
    return Engine(lambda: compiled, InMemoryEntityStore(entities.values()), options)


def _evaluated(decision: Decision) -> bool:
    """Whether Cedar decided: a deny whose only errors are policies failing to evaluate (a
    missing attribute or entity: Cedar skips such a policy) was decided; a request that could
    not be translated or evaluated at all was not."""
    if decision.error is not None:
        return False
    if decision.outcome != "error":
        return True
    return bool(decision.errors) and all(e.startswith(_POLICY_ERROR) for e in decision.errors)


def _describe(allowed: bool) -> str:
    return "permit" if allowed else "deny"


def _judge(case: PolicyTestCase, decision: Decision, compiled: CompiledPolicySet) -> CaseResult:
    got = sorted(decision.reasons)
    if not _evaluated(decision):
        why = (decision.error or {}).get("message") or "; ".join(decision.errors) or "error"
        return CaseResult(case, "error", f"the request could not be evaluated: {why}",
                          decision)
    notes = f" (determining: [{', '.join(got)}])"
    if decision.errors:
        notes += f" (evaluation errors: {'; '.join(decision.errors)})"
    if decision.allowed != case.decision:
        return CaseResult(case, "failed", f"expected {_describe(case.decision)}, got "
                                          f"{_describe(decision.allowed)}{notes}", decision)
    if case.policies is not None:
        ids = [p.id for p in compiled.policies if not p.template]
        ids.extend(x.link_id for x in compiled.links)
        unknown = sorted(set(case.policies) - set(ids))
        if unknown:
            return CaseResult(case, "error", "no policy has the id(s) " + ", ".join(unknown)
                              + f" (ids in the set: {', '.join(ids)})", decision)
        if frozenset(got) != case.policies:
            return CaseResult(case, "failed", f"expected determining policies "
                                              f"[{', '.join(sorted(case.policies))}], got "
                                              f"[{', '.join(got)}] ({_describe(decision.allowed)})",
                              decision)
    return CaseResult(case, "passed", "", decision)
