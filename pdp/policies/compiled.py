"""Loading a policy-set directory into one immutable :class:`CompiledPolicySet`.

A policy set is one directory (not recursive): one or more ``*.cedar`` files, at most one
schema (``*.cedarschema`` in Cedar syntax, or ``*.cedarschema.json``), an optional
``entities.json`` in Cedar's entity JSON format and any number of ``*.links.json`` template
links in the Cedar CLI's format (:mod:`pdp.policies.links`). Other files are ignored. Every
problem is reported as a :class:`~pdp.errors.PolicyDiagnostic` naming the file, the policy
and, wherever it can be worked out, the line and column.
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

from pdp.cedar import _cedarpy
from pdp.cedar.pieces import pieces
from pdp.errors import CedarInputError, EntityError, PolicyDiagnostic, PolicyLoadError
from pdp.policies.entity_schema import check_conformance, parse_document
from pdp.policies.index import SliceIndex
from pdp.policies.links import LINKS_SUFFIX, LinkInfo, load_links_file, schema_problems
from pdp.policies.schema_types import SchemaTypes
from pdp.policies.source import Statement, locate_in_statement, split_statements

__all__ = ["PolicyInfo", "CompiledPolicySet", "compile_directory", "locate", "ENTITIES_FILE"]

ENTITIES_FILE = "entities.json"
_POLICY_N = re.compile(r"`?policy(\d+)`?")
# Cedar parses a text without releasing the interpreter lock (about a second for a file of
# 10,000 policies): a larger file is given to it in pieces of whole statements of about this
# size (a few milliseconds each), so that requests served while a reload compiles are never
# kept waiting long. Cedar still decides every statement; a file it refuses is parsed whole
# again for its diagnostics.
_PARSE_PIECE = 4_096
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
    policy_set: Any  # a pdp.cedar._cedarpy policy set handle
    schema: Any | None  # a pdp.cedar._cedarpy schema handle
    schema_types: SchemaTypes | None
    policies: tuple[PolicyInfo, ...]
    entities: tuple[Mapping[str, Any], ...]  # normalised Cedar entity JSON (explicit forms)
    index: SliceIndex
    files: tuple[str, ...]
    links: tuple[LinkInfo, ...] = ()  # those of the *.links.json files
    # what the entities were read from (the digest of the schema and entities.json)
    entities_source: str = ""

    def policy(self, policy_id: str) -> PolicyInfo | None:
        for p in self.policies:
            if p.id == policy_id:
                return p
        return None

    def templates(self) -> dict[str, PolicyInfo]:
        return {p.id: p for p in self.policies if p.template}

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


def locate(compiled: CompiledPolicySet, policy_id: str,
           links: Mapping[str, LinkInfo] | None = None) -> dict[str, Any]:
    """Where a policy is: ``{"id", "file", "line", "column"}`` with ``file`` relative to the
    policy-set directory (only ``{"id"}`` if the set has no such policy, e.g. after a reload).

    A template-linked policy (a link of a links file, or one of ``links``) is
    ``{"id", "link": {"file", "line"} or {"stored": true}, "template": {"id", "file", "line",
    "column"}}``."""
    info = compiled.policy(policy_id)
    if info is None:
        link = (links or {}).get(policy_id)
        if link is None:
            link = next((x for x in compiled.links if x.link_id == policy_id), None)
        if link is None:
            return {"id": policy_id}
        where: dict[str, Any] = {"file": link.file, "line": link.line} \
            if link.file is not None else {"stored": True}
        return {"id": policy_id, "link": where,
                "template": locate(compiled, link.template_id)}
    return {"id": policy_id, "file": info.file, "line": info.line, "column": info.column}


def compile_directory(directory: Path | str,
                      previous: CompiledPolicySet | None = None) -> CompiledPolicySet:
    """Load, validate and compile a policy-set directory; raise PolicyLoadError on any problem.
    ``previous``: the set served until now, whose entities are taken as they are when the
    schema and ``entities.json`` have not changed (a reload of the policies alone reads
    10,000 entities again in no time)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PolicyLoadError([PolicyDiagnostic(str(directory), "not a directory")])
    cedar_files = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix == ".cedar")
    schema_files = sorted(
        p for p in directory.iterdir()
        if p.is_file() and p.name.endswith((".cedarschema", ".cedarschema.json")))
    entities_file = directory / ENTITIES_FILE
    links_files = sorted(p for p in directory.iterdir()
                         if p.is_file() and p.name.endswith(LINKS_SUFFIX))
    diagnostics: list[PolicyDiagnostic] = []
    if not cedar_files:
        diagnostics.append(PolicyDiagnostic(str(directory), "no *.cedar policy file"))
    if len(schema_files) > 1:
        diagnostics.append(PolicyDiagnostic(
            str(directory), "more than one schema: " + ", ".join(p.name for p in schema_files)))
    if diagnostics:
        raise PolicyLoadError(diagnostics)

    digest = hashlib.sha256()
    # what the entities are read from: the schema and entities.json (see ``previous``)
    entities_digest = hashlib.sha256()
    texts: dict[Path, str] = {}
    for path in [*cedar_files, *schema_files,
                 *([entities_file] if entities_file.is_file() else []), *links_files]:
        try:
            data = path.read_bytes()
            texts[path] = data.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            diagnostics.append(PolicyDiagnostic(path.name, f"cannot read: {exc}"))
            continue
        named = path.name.encode() + b"\0" + data + b"\0"
        digest.update(named)
        if path == entities_file or path in schema_files:
            entities_digest.update(named)
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
    templates = {p.id: p for p in infos if p.template}
    taken = {p.id for p in infos}
    links = [link for path in links_files for link in load_links_file(
        path.name, texts[path], templates, schema_types, taken, diagnostics)]
    if schema is not None and links:
        wrong = schema_problems(links, templates, schema)
        diagnostics.extend(PolicyDiagnostic(x.file or "<links>", wrong[x.link_id], x.line)
                           for x in links if x.link_id in wrong)
    policy_set = _build_policy_set(infos, links, diagnostics)
    entities: tuple[Mapping[str, Any], ...] = ()
    source = ""
    if entities_file.is_file():
        source = entities_digest.hexdigest()
        if previous is not None and previous.entities_source == source:
            entities = previous.entities  # (immutable, and read from the same texts)
        else:
            entities = _load_entities(entities_file.name, texts[entities_file], schema,
                                      diagnostics, schema_types)
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
        index=SliceIndex.build(policy_set, infos, links),
        files=tuple(p.name for p in texts),
        links=tuple(links),
        entities_source=source,
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
            schema = _cedarpy.schema_from_json(text)
        else:
            types = SchemaTypes.from_text(text, path.name)
            schema = _cedarpy.parse_schema(text)
    except PolicyLoadError as exc:
        if path.name.endswith(".json"):
            raise
        raise PolicyLoadError([_locate_in_schema(text, d) for d in exc.diagnostics]) from None
    except (CedarInputError, ValueError, TypeError, KeyError) as exc:
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
    """Each file is parsed by Cedar as a whole (Cedar decides what is accepted); its
    statements, found by :func:`split_statements`, give each policy its position."""
    statements: list[Statement] = []
    ests: list[dict[str, Any]] = []
    for path in files:
        text = texts[path]
        located, split_errors = split_statements(path.name, text)
        found = _parsed_in_pieces(located) \
            if len(text) > _PARSE_PIECE and not split_errors else None
        if found is None:
            try:
                found = _in_order(json.loads(_cedarpy.policies_to_json(text)))
            except (CedarInputError, ValueError) as exc:
                _locate_syntax_error(path.name, text, str(exc), diagnostics)
                continue
        if split_errors or len(located) != len(found):  # pragma: no cover - lexer disagrees
            located = [Statement(path.name, n + 1, _cedarpy.policies_from_json(
                json.dumps({"staticPolicies": {"p": est}})), 1, 1)
                for n, (est, _) in enumerate(found)]
        for st, (est, template) in zip(located, found, strict=True):
            est["__template__"] = template
            statements.append(st)
            ests.append(est)
    return statements, ests


def _parsed_in_pieces(located: Sequence[Statement],
                      ) -> list[tuple[dict[str, Any], bool]] | None:
    """The policies of a file's statements in order, parsed by Cedar a piece of whole
    statements at a time (see ``_PARSE_PIECE``); None if Cedar refuses a piece."""
    found: list[tuple[dict[str, Any], bool]] = []
    for piece in pieces((statement.text for statement in located), _PARSE_PIECE):
        try:
            found += _in_order(json.loads(_cedarpy.policies_to_json(piece)))
        except (CedarInputError, ValueError):
            return None
    return found


def _in_order(doc: Mapping[str, Any]) -> list[tuple[dict[str, Any], bool]]:
    """The policies of one parsed text in source order (Cedar numbers them ``policyN``)."""
    numbered: list[tuple[int, dict[str, Any], bool]] = []
    for section, template in (("staticPolicies", False), ("templates", True)):
        for pid, est in (doc.get(section) or {}).items():
            m = _POLICY_N.fullmatch(pid)
            numbered.append((int(m.group(1)) if m else len(numbered), est, template))
    numbered.sort(key=lambda item: item[0])
    return [(est, template) for _, est, template in numbered]


def _locate_syntax_error(file: str, text: str, whole: str,
                         diagnostics: list[PolicyDiagnostic]) -> None:
    """Cedar rejected ``text``: report each rejected statement where it is."""
    found, split_errors = split_statements(file, text)
    before = len(diagnostics)
    for st in found:
        try:
            _cedarpy.policies_to_json(st.text)
        except CedarInputError as exc:
            line, column = locate_in_statement(st, str(exc))
            diagnostics.append(PolicyDiagnostic(
                st.file, f"syntax error: {exc}", line, column, st.describe()))
    for err in split_errors:
        diagnostics.append(PolicyDiagnostic(err.file, f"syntax error: {err.message}", err.line,
                                            err.column))
    if len(diagnostics) == before:
        diagnostics.append(PolicyDiagnostic(file, f"syntax error: {whole}", 1, 1))


def _assign_ids(statements: Sequence[Statement], ests: Sequence[dict[str, Any]],
                ) -> list[PolicyInfo]:
    """Each policy's id is its ``@id`` annotation when unique in the set, else ``file:line``
    (``file:line:column`` when the line holds several such policies). Ids depend only on the
    text, so they are the same after a reload; a generated id never takes an ``@id``'s."""
    annotated = [_annotation_id(est) for est in ests]
    counts: dict[str, int] = {}
    for ann in annotated:
        if ann is not None:
            counts[ann] = counts.get(ann, 0) + 1
    taken = {ann for ann, c in counts.items() if c == 1}
    lines: dict[tuple[str, int], int] = {}
    for st, ann in zip(statements, annotated, strict=True):
        if ann not in taken:
            lines[(st.file, st.line)] = lines.get((st.file, st.line), 0) + 1
    infos: list[PolicyInfo] = []
    for st, est, ann in zip(statements, ests, annotated, strict=True):
        if ann is not None and ann in taken:
            pid = ann
        else:
            pid = f"{st.file}:{st.line}"
            if lines[(st.file, st.line)] > 1 or pid in taken:
                pid = f"{st.file}:{st.line}:{st.column}"
            suffix = 1
            while pid in taken:
                suffix += 1
                pid = f"{st.file}:{st.line}:{st.column}#{suffix}"
            taken.add(pid)
        template = bool(est.pop("__template__"))
        infos.append(PolicyInfo(pid, str(est.get("effect")), st.file, st.line, st.column,
                                st.first_line, ann, est, template))
    return infos


def _annotation_id(est: Mapping[str, Any]) -> str | None:
    value = (est.get("annotations") or {}).get("id")
    return value if isinstance(value, str) else None


def _validate(statements: Sequence[Statement], infos: Sequence[PolicyInfo], schema: Any,
              diagnostics: list[PolicyDiagnostic]) -> None:
    joined = "\n".join(st.text for st in statements)
    try:
        problems = _cedarpy.validate_policies(joined, schema)
    except CedarInputError as exc:
        diagnostics.append(PolicyDiagnostic("<schema>", f"validation failed: {exc}"))
        return
    for policy_id, error in problems:
        m = _POLICY_N.fullmatch(policy_id or "")
        if m is not None and int(m.group(1)) < len(statements):
            st = statements[int(m.group(1))]
            message = _POLICY_N.sub(_literal(st.describe()),
                                    _FOR_POLICY.sub("", error, count=1))
            line, column = locate_in_statement(st, error)
            diagnostics.append(PolicyDiagnostic(
                st.file, f"schema validation: {message}", line, column, st.describe()))
        else:
            diagnostics.append(PolicyDiagnostic("<policies>", f"schema validation: {error}"))


def _literal(text: str) -> Callable[[re.Match[str]], str]:
    return lambda _m: text


def _build_policy_set(infos: Sequence[PolicyInfo], links: Sequence[LinkInfo],
                      diagnostics: list[PolicyDiagnostic]) -> Any:
    # Serialised policy by policy: one json.dumps of a large set holds the GIL for tens of
    # milliseconds, which a reload compiling beside live requests must not do.
    def section(template: bool) -> str:
        return "{" + ",".join(f"{json.dumps(p.id)}:{json.dumps(p.est)}"
                              for p in infos if p.template == template) + "}"

    linked = json.dumps([{"templateId": x.template_id, "newId": x.link_id,
                          "values": {s: {"type": t, "id": i} for s, (t, i) in x.values.items()}}
                         for x in links])
    text = (f'{{"staticPolicies":{section(False)},"templates":{section(True)},'
            f'"templateLinks":{linked}}}')
    try:
        return _cedarpy.policy_set_from_json(text)
    except CedarInputError as exc:
        diagnostics.append(PolicyDiagnostic("<policies>", f"cannot build the policy set: {exc}"))
        return None


def _load_entities(name: str, text: str, schema: Any, diagnostics: list[PolicyDiagnostic],
                   types: SchemaTypes | None = None) -> tuple[Mapping[str, Any], ...]:
    """The entities of ``entities.json`` in Cedar's normal form (explicit ``__entity`` and
    ``__extn`` values). Cedar reads the file, so every form it accepts is accepted (the
    ``__entity`` escape in ``uid`` and ``parents``, implicit forms with a schema, tags); a
    rejection keeps Cedar's reason, located at the entity at fault where one is."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        diagnostics.append(PolicyDiagnostic(name, f"malformed JSON: {exc.msg}", exc.lineno,
                                            exc.colno))
        return ()
    if not isinstance(raw, list):
        diagnostics.append(PolicyDiagnostic(name, "must be a JSON array of entities", 1, 1))
        return ()
    try:
        parsed = _cedarpy.parse_entities(text, schema, release_gil=True)
    except CedarInputError as exc:
        diagnostics.extend(_entity_errors(name, text, raw, schema, str(exc), types))
        return ()
    # in the file's order; with a schema, Cedar adds the schema's action entities: not kept
    by_uid = {(e["uid"]["type"], e["uid"]["id"]): e
              for e in json.loads(_cedarpy.entities_to_json(parsed))}
    for e in by_uid.values():  # a set, which Cedar writes in an order of its own each time:
        parents = e.get("parents")  # sorted, so that the same file gives the same entities
        if isinstance(parents, list) and len(parents) > 1:
            parents.sort(key=_canonical)
    return tuple(by_uid[uid] for uid in dict.fromkeys(_raw_uid(ent) for ent in raw)
                 if uid is not None and uid in by_uid)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _entity_reason(ent: Any, types: SchemaTypes | None) -> str | None:
    """Why Cedar refused an entity, in words where cedarpy only says that it does not
    conform: the schema check's message naming the attribute and the type it should have."""
    if types is None:
        return None
    try:
        uid, attrs, parents, _ = parse_document(ent)
        check_conformance(uid, attrs, parents, types)
    except EntityError as exc:
        return exc.message
    return None


def _raw_uid(ent: Any) -> tuple[str, str] | None:
    try:
        uid = ent["uid"]
        uid = uid.get("__entity", uid)
        return (uid["type"], uid["id"])
    except (KeyError, TypeError, AttributeError):
        return None


def _entity_errors(name: str, text: str, raw: Sequence[Any], schema: Any,
                   reason: str, types: SchemaTypes | None = None) -> list[PolicyDiagnostic]:
    """Cedar's reason for rejecting ``entities.json``, at each entity Cedar rejects on its
    own, and at the second of two different entities with one uid."""
    found: list[PolicyDiagnostic] = []
    seen: dict[tuple[str, str], Any] = {}
    starts = _element_starts(text)
    for i, ent in enumerate(raw):
        where = starts[i] if i < len(starts) else (None, None)
        uid = _raw_uid(ent)
        label = f"entity #{i + 1}" if uid is None else \
            f"entity {uid[0]}::{json.dumps(uid[1], ensure_ascii=False)}"
        try:
            _cedarpy.parse_entities(json.dumps([ent]), schema)
        except CedarInputError as exc:
            hint = " (no `uid` with a `type` and an `id`)" if uid is None else ""
            why = _entity_reason(ent, types) if uid is not None else None
            found.append(PolicyDiagnostic(name, f"{why} (Cedar: {exc})" if why
                                          else f"{label}: {exc}{hint}",
                                          *where))
            continue
        if uid is not None and uid in seen and seen[uid] != ent:
            found.append(PolicyDiagnostic(name, f"{label}: duplicate entity entry",
                                          *where))
        elif uid is not None:
            seen[uid] = ent
    return found or [PolicyDiagnostic(name, reason, 1, 1)]


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
