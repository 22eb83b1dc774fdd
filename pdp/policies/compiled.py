"""Loading a policy-set directory into one immutable :class:`CompiledPolicySet`.

A policy set is one directory (not recursive): one or more ``*.cedar`` files, at most one
schema (``*.cedarschema`` in Cedar syntax, or ``*.cedarschema.json``), and an optional
``entities.json`` in Cedar's entity JSON format. Other files are ignored. Every problem is
reported as a :class:`~pdp.errors.PolicyDiagnostic` naming the file, the policy and, wherever
it can be worked out, the line and column.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cedarpy

from pdp.errors import PolicyDiagnostic, PolicyLoadError
from pdp.policies.index import SliceIndex
from pdp.policies.schema_types import SchemaTypes
from pdp.policies.source import Statement, locate_in_statement, split_statements

__all__ = ["PolicyInfo", "CompiledPolicySet", "compile_directory", "locate", "ENTITIES_FILE"]

ENTITIES_FILE = "entities.json"
_POLICY_N = re.compile(r"`?policy(\d+)`?")
_FOR_POLICY = re.compile(r"^for policy `?policy\d+`?,\s*")


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    """One policy as loaded: its id in the compiled set and where it came from."""

    id: str
    effect: str
    file: str
    line: int
    column: int
    first_line: str
    annotation_id: str | None
    est: Mapping[str, Any] = field(repr=False)
    template: bool = False


@dataclass(frozen=True, slots=True)
class CompiledPolicySet:
    """Everything the hot path needs about one version of a policy set. Never mutated."""

    version: str
    directory: Path
    loaded_at: datetime
    policy_set: Any  # cedarpy.PolicySet
    schema: Any | None  # cedarpy.Schema
    schema_types: SchemaTypes | None
    policies: tuple[PolicyInfo, ...]
    entities: tuple[Mapping[str, Any], ...]  # normalised Cedar entity JSON (explicit forms)
    index: SliceIndex
    files: tuple[str, ...]

    def policy(self, policy_id: str) -> PolicyInfo | None:
        for p in self.policies:
            if p.id == policy_id:
                return p
        return None

    def action_names(self) -> tuple[str, ...]:
        """Actions known to this set: from the schema, else those named in policy heads."""
        if self.schema_types is not None:
            return tuple(self.schema_types.action_names())
        names: set[str] = set()
        for p in self.policies:
            scope = p.est.get("action", {})
            ents = [scope["entity"]] if "entity" in scope else list(scope.get("entities", []))
            names.update(e["id"] for e in ents if isinstance(e, dict) and "id" in e)
        return tuple(sorted(names))


def locate(compiled: CompiledPolicySet, policy_id: str) -> dict[str, Any]:
    """Where a policy is: ``{"id", "file", "line", "column"}`` with ``file`` relative to the
    policy-set directory (only ``{"id"}`` if the set has no such policy, e.g. after a reload)."""
    info = compiled.policy(policy_id)
    if info is None:
        return {"id": policy_id}
    return {"id": policy_id, "file": info.file, "line": info.line, "column": info.column}


def compile_directory(directory: Path | str) -> CompiledPolicySet:
    """Load, validate and compile a policy-set directory; raise PolicyLoadError on any problem."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PolicyLoadError([PolicyDiagnostic(str(directory), "not a directory")])
    cedar_files = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix == ".cedar")
    schema_files = sorted(
        p for p in directory.iterdir()
        if p.is_file() and p.name.endswith((".cedarschema", ".cedarschema.json")))
    entities_file = directory / ENTITIES_FILE
    diagnostics: list[PolicyDiagnostic] = []
    if not cedar_files:
        diagnostics.append(PolicyDiagnostic(str(directory), "no *.cedar policy file"))
    if len(schema_files) > 1:
        diagnostics.append(PolicyDiagnostic(
            str(directory), "more than one schema: " + ", ".join(p.name for p in schema_files)))
    if diagnostics:
        raise PolicyLoadError(diagnostics)

    digest = hashlib.sha256()
    texts: dict[Path, str] = {}
    for path in [*cedar_files, *schema_files,
                 *([entities_file] if entities_file.is_file() else [])]:
        try:
            data = path.read_bytes()
            texts[path] = data.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            diagnostics.append(PolicyDiagnostic(path.name, f"cannot read: {exc}"))
            continue
        digest.update(path.name.encode() + b"\0" + data + b"\0")
    if diagnostics:
        raise PolicyLoadError(diagnostics)

    schema, schema_types = _load_schema(schema_files[0], texts[schema_files[0]]) \
        if schema_files else (None, None)
    statements, ests = _parse_policies(cedar_files, texts, diagnostics)
    if diagnostics:
        raise PolicyLoadError(diagnostics)
    infos = _assign_ids(statements, ests)
    if schema is not None:
        _validate(statements, infos, schema, diagnostics)
    policy_set = _build_policy_set(infos, diagnostics)
    entities: tuple[Mapping[str, Any], ...] = ()
    if entities_file.is_file():
        entities = _load_entities(entities_file.name, texts[entities_file], schema, diagnostics,
                                  schema_types)
    if diagnostics:
        raise PolicyLoadError(diagnostics)
    return CompiledPolicySet(
        version=digest.hexdigest()[:16],
        directory=directory.resolve(),
        loaded_at=datetime.now(UTC),
        policy_set=policy_set,
        schema=schema,
        schema_types=schema_types,
        policies=tuple(infos),
        entities=entities,
        index=SliceIndex.build(policy_set, infos),
        files=tuple(p.name for p in texts),
    )


def _load_schema(path: Path, text: str) -> tuple[Any, SchemaTypes]:
    try:
        if path.name.endswith(".json"):
            try:
                doc = json.loads(text)
            except json.JSONDecodeError as exc:
                raise PolicyLoadError([PolicyDiagnostic(
                    path.name, f"invalid schema: malformed JSON: {exc.msg}", exc.lineno,
                    exc.colno)]) from None
            types = SchemaTypes.from_json(doc, path.name)
            schema = cedarpy.Schema.from_json_str(text, release_gil=True)
        else:
            types = SchemaTypes.from_text(text, path.name)
            schema = cedarpy.Schema.from_str(text, release_gil=True)
    except PolicyLoadError as exc:
        if path.name.endswith(".json"):
            raise
        raise PolicyLoadError([_locate_in_schema(text, d) for d in exc.diagnostics]) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise PolicyLoadError([_locate_in_schema(text, PolicyDiagnostic(
            path.name, f"invalid schema: {exc}"))]) from None
    return schema, types


def _locate_in_schema(text: str, d: PolicyDiagnostic) -> PolicyDiagnostic:
    """A schema diagnostic without a place, placed at the first use of the name it quotes in
    backticks (outside comments), if there is one."""
    if d.line is not None:
        return d
    for token in re.findall(r"`([^`]+)`", d.message):
        name = token.split("::")[-1]
        for number, line in enumerate(text.splitlines(), 1):
            code = line.split("//", 1)[0]
            m = re.search(rf"(?<!\w){re.escape(name)}(?!\w)", code)
            if m is not None:
                return PolicyDiagnostic(d.file, d.message, number, m.start() + 1, d.policy)
    return d


def _parse_policies(files: Sequence[Path], texts: Mapping[Path, str],
                    diagnostics: list[PolicyDiagnostic],
                    ) -> tuple[list[Statement], list[dict[str, Any]]]:
    statements: list[Statement] = []
    ests: list[dict[str, Any]] = []
    for path in files:
        found, split_errors = split_statements(path.name, texts[path])
        for err in split_errors:
            diagnostics.append(PolicyDiagnostic(err.file, err.message, err.line, err.column))
        for st in found:
            try:
                doc = json.loads(cedarpy.policies_to_json_str(st.text))
            except ValueError as exc:
                line, column = locate_in_statement(st, str(exc))
                diagnostics.append(PolicyDiagnostic(
                    st.file, f"syntax error: {exc}", line, column, st.describe()))
                continue
            bodies = [*doc.get("staticPolicies", {}).values()]
            templates = [*doc.get("templates", {}).values()]
            if len(bodies) + len(templates) != 1:
                diagnostics.append(PolicyDiagnostic(
                    st.file, "expected exactly one policy", st.line, st.column, st.describe()))
                continue
            est = (bodies or templates)[0]
            est["__template__"] = bool(templates)
            statements.append(st)
            ests.append(est)
    return statements, ests


def _assign_ids(statements: Sequence[Statement], ests: Sequence[dict[str, Any]],
                ) -> list[PolicyInfo]:
    """Each policy's id is its ``@id`` annotation when unique in the set, else ``file:line``."""
    counts: dict[str, int] = {}
    for st in statements:
        if st.annotation_id:
            counts[st.annotation_id] = counts.get(st.annotation_id, 0) + 1
    infos: list[PolicyInfo] = []
    for st, est in zip(statements, ests, strict=True):
        ann = st.annotation_id
        pid = ann if ann and counts[ann] == 1 else f"{st.file}:{st.line}"
        template = bool(est.pop("__template__"))
        infos.append(PolicyInfo(pid, str(est.get("effect")), st.file, st.line, st.column,
                                st.first_line, ann, est, template))
    return infos


def _validate(statements: Sequence[Statement], infos: Sequence[PolicyInfo], schema: Any,
              diagnostics: list[PolicyDiagnostic]) -> None:
    joined = "\n".join(st.text for st in statements)
    try:
        result = cedarpy.validate_policies(joined, schema, release_gil=True)
    except ValueError as exc:
        diagnostics.append(PolicyDiagnostic("<schema>", f"validation failed: {exc}"))
        return
    for err in result.errors:
        m = _POLICY_N.fullmatch(err.policy_id or "")
        if m is not None and int(m.group(1)) < len(statements):
            st = statements[int(m.group(1))]
            message = _POLICY_N.sub(_literal(st.describe()),
                                    _FOR_POLICY.sub("", err.error, count=1))
            line, column = locate_in_statement(st, err.error)
            diagnostics.append(PolicyDiagnostic(
                st.file, f"schema validation: {message}", line, column, st.describe()))
        else:
            diagnostics.append(PolicyDiagnostic("<policies>", f"schema validation: {err.error}"))


def _literal(text: str) -> Callable[[re.Match[str]], str]:
    return lambda _m: text


def _build_policy_set(infos: Sequence[PolicyInfo], diagnostics: list[PolicyDiagnostic]) -> Any:
    # Serialised policy by policy: one json.dumps of a large set holds the GIL for tens of
    # milliseconds, which a reload compiling beside live requests must not do.
    def section(template: bool) -> str:
        return "{" + ",".join(f"{json.dumps(p.id)}:{json.dumps(p.est)}"
                              for p in infos if p.template == template) + "}"

    text = (f'{{"staticPolicies":{section(False)},"templates":{section(True)},'
            f'"templateLinks":[]}}')
    try:
        return cedarpy.PolicySet.from_json_str(text, release_gil=True)
    except ValueError as exc:
        diagnostics.append(PolicyDiagnostic("<policies>", f"cannot build the policy set: {exc}"))
        return None


def _load_entities(name: str, text: str, schema: Any, diagnostics: list[PolicyDiagnostic],
                   types: SchemaTypes | None = None) -> tuple[Mapping[str, Any], ...]:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        diagnostics.append(PolicyDiagnostic(name, f"malformed JSON: {exc.msg}", exc.lineno,
                                            exc.colno))
        return ()
    if not isinstance(raw, list):
        diagnostics.append(PolicyDiagnostic(name, "must be a JSON array of entities", 1, 1))
        return ()
    seen: set[tuple[str, str]] = set()
    normalised: list[Mapping[str, Any]] = []
    starts = _element_starts(text)
    for i, ent in enumerate(raw):
        where = starts[i] if i < len(starts) else _locate_entity(text, ent)
        try:
            uid = ent["uid"]
            key = (str(uid["type"]), str(uid["id"]))
            parsed = cedarpy.Entities.from_json_str(json.dumps([ent]), schema)
        except (KeyError, TypeError) as exc:
            diagnostics.append(PolicyDiagnostic(
                name, f"entity #{i + 1}: missing or invalid {exc}", *where))
            continue
        except ValueError as exc:
            diagnostics.append(PolicyDiagnostic(
                name, _entity_reason(ent, schema, types) or
                f"entity {key[0]}::{json.dumps(key[1])}: {exc}", *where, policy=None))
            continue
        if key in seen:
            diagnostics.append(PolicyDiagnostic(
                name, f"duplicate entity {key[0]}::{json.dumps(key[1])}", *where))
            continue
        seen.add(key)
        # with a schema, cedarpy adds the schema's action entities: keep only this one
        normalised.extend(e for e in json.loads(str(parsed))
                          if (str(e["uid"]["type"]), str(e["uid"]["id"])) == key)
    return tuple(normalised)


def _entity_reason(ent: Any, schema: Any, types: SchemaTypes | None) -> str | None:
    """Why Cedar refused an entity, in words (cedarpy only says that it does not conform):
    the entity validator's message naming the attribute and the type it should have."""
    if types is None:
        return None
    from pdp.entities.validate import EntityValidator  # pdp.entities imports this package
    from pdp.errors import EntityError

    try:
        EntityValidator(schema, types).validate([ent])
    except EntityError as exc:
        return exc.message
    return None


def _element_starts(text: str) -> list[tuple[int | None, int | None]]:
    """Line and column where each element of a top-level JSON array starts."""
    decoder = json.JSONDecoder()
    starts: list[tuple[int | None, int | None]] = []
    at = text.find("[") + 1
    try:
        while 0 < at < len(text):
            while at < len(text) and text[at] in " \t\r\n,":
                at += 1
            if at >= len(text) or text[at] == "]":
                break
            line = text.count("\n", 0, at) + 1
            starts.append((line, at - text.rfind("\n", 0, at)))
            _, at = decoder.raw_decode(text, at)
    except json.JSONDecodeError:
        pass
    return starts


def _locate_entity(text: str, ent: Any) -> tuple[int | None, int | None]:
    try:
        needle = json.dumps(ent["uid"]["id"])
    except (KeyError, TypeError):
        return None, None
    at = text.find(needle)
    if at < 0:
        return None, None
    line = text.count("\n", 0, at) + 1
    return line, at - text.rfind("\n", 0, at)
