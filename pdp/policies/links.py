"""Template links: a template's slots (``?principal``, ``?resource``) filled with entities.

Links come from ``*.links.json`` files beside the policies, in the Cedar CLI's
template-linked format::

    [{"template_id": "share", "link_id": "alice-views-q3",
      "args": {"?principal": "User::\\"alice\\"", "?resource": "Folder::\\"q3\\""}}]

or from the entity store's database (the admin API and ``pdp links``). Either way a link is
checked here against the policy set: its template exists, it fills exactly the template's
slots, each with an entity uid (Cedar's ``Type::"id"`` text, read by Cedar, or
``{"type", "id"}``) of a type the schema declares, and its id is no other policy's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pdp.cedar import _cedarpy
from pdp.errors import CedarInputError, LinkError, PolicyDiagnostic
from pdp.policies.schema_types import SchemaTypes

__all__ = ["LINKS_SUFFIX", "LinkInfo", "LinkSet", "check_link", "link_problem", "load_links_file",
           "schema_problems", "stranded", "template_slots", "uid_text"]

LINKS_SUFFIX = ".links.json"
EntityUid = tuple[str, str]
_MAX_UID_TEXT = 1024
MAX_ID = 256
_POLICY_N = re.compile(r"policy(\d+)")
_FOR_POLICY = re.compile(r"^for policy `?policy\d+`?,\s*")


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """One checked link: its id, its template and the entity each slot is filled with, and
    where it was written (``file``/``line``; None for a link held in the database)."""

    link_id: str
    template_id: str
    values: Mapping[str, EntityUid]
    file: str | None = None
    line: int | None = None

    @property
    def new_id(self) -> str:
        """The id of the linked policy (Cedar's name for it; what the slice index reads)."""
        return self.link_id

    def to_dict(self) -> dict[str, Any]:
        """The Cedar CLI's template-linked form."""
        return {"template_id": self.template_id, "link_id": self.link_id,
                "args": {slot: uid_text(uid) for slot, uid in sorted(self.values.items())}}


@dataclass(frozen=True, slots=True, eq=False)
class LinkSet:
    """The links held in the entity store, as one immutable snapshot: ``by_id``, with a
    ``serial`` that grows by one per change and the ids each of the last changes touched
    (``log``), so that whoever indexed an earlier snapshot can catch up with what changed
    instead of comparing every link."""

    by_id: Mapping[str, LinkInfo]
    serial: int = 0
    log: tuple[tuple[int, frozenset[str]], ...] = ()  # (serial, ids changed to reach it)

    LOG_SIZE = 64

    def changed(self, live: Sequence[LinkInfo], gone: Sequence[str]) -> LinkSet:
        """The next snapshot: ``live`` links added or replaced, ``gone`` ids removed."""
        by_id = dict(self.by_id)
        by_id.update((x.link_id, x) for x in live)
        for link_id in gone:
            by_id.pop(link_id, None)
        ids = frozenset([*(x.link_id for x in live), *gone])
        return LinkSet(by_id, self.serial + 1,
                       (*self.log, (self.serial + 1, ids))[-self.LOG_SIZE:])

    def replaced(self, links: Sequence[LinkInfo]) -> LinkSet:
        """The next snapshot, all new (what changed is not known)."""
        return LinkSet({x.link_id: x for x in links}, self.serial + 1, ())

    def changed_since(self, earlier: LinkSet) -> frozenset[str] | None:
        """Ids changed from ``earlier`` (a snapshot of the same store) to this one; None when
        the log does not reach back that far."""
        if earlier.serial == self.serial:
            return frozenset()
        steps = [ids for serial, ids in self.log if serial > earlier.serial]
        if len(steps) != self.serial - earlier.serial:
            return None
        return frozenset().union(*steps)


def stranded(links: Iterable[LinkInfo], templates: Mapping[str, Any],
             schema_types: SchemaTypes | None, taken: Collection[str],
             ) -> list[tuple[str, str]]:
    """The stored ``links`` that a policy set (its templates, schema and policy and file-link
    ids) cannot hold, each with the reason: ``(link id, problem)``."""
    slots = {tid: template_slots(t.est) for tid, t in templates.items()}
    found: list[tuple[str, str]] = []
    for link in links:
        problem = f"link {link.link_id}: its id is a policy's" if link.link_id in taken \
            else link_problem(link, templates, schema_types, slots)
        if problem is not None:
            found.append((link.link_id, problem))
    return found


def schema_problems(links: Sequence[LinkInfo], templates: Mapping[str, Any],
                    schema: Any) -> dict[str, str]:
    """Cedar's validator on each link's policy (its template with the slots filled), as
    ``cedar validate`` checks template-linked policies: an entity type the scope cannot have
    for any action the schema declares, or a condition that does not type-check with it.
    ``link id → problem``, for links whose template is known; none without a schema."""
    known = [x for x in links if x.template_id in templates]
    if schema is None or not known:
        return {}
    statics = {f"l{n:09d}": _filled(templates[x.template_id].est, x.values)
               for n, x in enumerate(known)}
    try:
        text = _cedarpy.policies_from_json(json.dumps(
            {"staticPolicies": statics, "templates": {}, "templateLinks": []}))
        problems = _cedarpy.validate_policies(text, schema)
    except CedarInputError as exc:
        return {x.link_id: f"link {x.link_id}: cannot be validated: {exc}" for x in known}
    found: dict[str, str] = {}
    for policy_id, error in problems:
        m = _POLICY_N.fullmatch(policy_id or "")
        if m is None or int(m.group(1)) >= len(known):
            continue
        link = known[int(m.group(1))]
        message = _FOR_POLICY.sub("", error, count=1)
        found.setdefault(link.link_id, f"link {link.link_id}: schema validation: {message}")
    return found


def _filled(est: Mapping[str, Any], values: Mapping[str, EntityUid]) -> dict[str, Any]:
    """A template's policy with its slots replaced by the link's entities."""
    def fill(constraint: Any) -> Any:
        if not isinstance(constraint, Mapping):
            return constraint
        out = dict(constraint)
        slot = out.pop("slot", None)
        if isinstance(slot, str) and slot in values:
            out["entity"] = {"type": values[slot][0], "id": values[slot][1]}
        elif slot is not None:
            out["slot"] = slot
        if isinstance(out.get("in"), Mapping):
            out["in"] = fill(out["in"])
        return out

    doc = dict(est)
    doc["principal"] = fill(est.get("principal"))
    doc["resource"] = fill(est.get("resource"))
    return doc


def uid_text(uid: EntityUid) -> str:
    """An entity uid as Cedar writes it: ``Type::"id"``."""
    return f"{uid[0]}::{json.dumps(uid[1], ensure_ascii=False)}"


def template_slots(est: Mapping[str, Any]) -> frozenset[str]:
    """The slots a template's scope declares."""
    found: set[str] = set()
    for var in ("principal", "resource"):
        constraint = est.get(var)
        if not isinstance(constraint, Mapping):
            continue
        for part in (constraint, constraint.get("in")):
            if isinstance(part, Mapping) and isinstance(part.get("slot"), str):
                found.add(part["slot"])
    return frozenset(found)


def _parse_uid(value: Any, where: str) -> EntityUid:
    """An entity uid from Cedar's ``Type::"id"`` text (Cedar reads it) or a JSON object."""
    if isinstance(value, Mapping):
        value = value.get("__entity", value)
        t, i = value.get("type"), value.get("id")
        if isinstance(t, str) and t and isinstance(i, str):
            return (t, i)
        raise LinkError(f'{where} must be an entity uid: Type::"id" or {{"type", "id"}}')
    if not isinstance(value, str) or len(value) > _MAX_UID_TEXT or "//" in value:
        raise LinkError(f'{where} must be an entity uid: Type::"id" or {{"type", "id"}}')
    try:  # Cedar reads the uid as the one entity of a scope constraint
        doc = json.loads(_cedarpy.policies_to_json(
            f"permit(principal == {value}, action, resource);"))
        [est] = doc["staticPolicies"].values()
        entity = est["principal"]["entity"]
        if doc["templates"] or est.get("conditions") or est["action"] != {"op": "All"} \
                or est["resource"] != {"op": "All"}:
            raise ValueError("not one entity uid")
        return (str(entity["type"]), str(entity["id"]))
    except (CedarInputError, ValueError, KeyError, TypeError):
        raise LinkError(f"{where}: `{value}` is not a Cedar entity uid "
                        '(Type::"id")') from None


def check_link(link_id: Any, template_id: Any, args: Any,
               templates: Mapping[str, Any], schema_types: SchemaTypes | None,
               taken: Collection[str] = ()) -> LinkInfo:
    """Check one link against the policy set's templates and schema; LinkError if wrong."""
    if not isinstance(link_id, str) or not link_id or len(link_id) > MAX_ID:
        raise LinkError(f"link_id must be a non-empty string of at most {MAX_ID} characters",
                        field="link_id")
    if not isinstance(template_id, str) or not template_id:
        raise LinkError(f"link {link_id}: template_id must be a non-empty string",
                        field="template_id")
    template = templates.get(template_id)
    if template is None:
        known = ", ".join(sorted(templates)) or "none"
        raise LinkError(f"link {link_id}: no template {template_id!r} (templates: {known})",
                        field="template_id")
    if link_id in taken:
        raise LinkError(f"link {link_id}: the id is already a policy's or a link's",
                        field="link_id")
    if not isinstance(args, Mapping):
        raise LinkError(f"link {link_id}: args must be an object of slots", field="args")
    slots = template_slots(template.est)
    missing = sorted(slots - set(args))
    extra = sorted(set(args) - slots)
    if missing:
        raise LinkError(f"link {link_id}: slot {', '.join(missing)} of template "
                        f"{template_id} is not filled", field="args")
    if extra:
        raise LinkError(f"link {link_id}: template {template_id} has no slot "
                        f"{', '.join(extra)}", field="args")
    values = {slot: _parse_uid(args[slot], f"link {link_id}: {slot}") for slot in sorted(slots)}
    link = LinkInfo(link_id, template_id, values)
    problem = link_problem(link, templates, schema_types)
    if problem is not None:
        raise LinkError(problem, field="args")
    return link


def link_problem(link: LinkInfo, templates: Mapping[str, Any],
                 schema_types: SchemaTypes | None,
                 slots_of: Mapping[str, frozenset[str]] | None = None) -> str | None:
    """Why ``link`` (already parsed) cannot be linked into a set with these templates and
    schema, or None. The check a stored link passes again whenever the policy set changes;
    ``slots_of`` (template id → its slots) spares reading each template per link."""
    template = templates.get(link.template_id)
    if template is None:
        return f"link {link.link_id}: no template {link.template_id!r}"
    slots = slots_of[link.template_id] if slots_of is not None \
        else template_slots(template.est)
    if set(link.values) != slots:
        return (f"link {link.link_id}: fills {', '.join(sorted(link.values)) or 'no slot'}, "
                f"template {link.template_id} has {', '.join(sorted(slots))}")
    if schema_types is not None:
        for slot, uid in sorted(link.values.items()):
            if schema_types.entity_attributes(uid[0]) is None:
                return (f"link {link.link_id}: {slot} is {uid_text(uid)}, of a type the "
                        "schema does not declare")
    return None


def load_links_file(name: str, text: str, templates: Mapping[str, Any],
                    schema_types: SchemaTypes | None, taken: set[str],
                    diagnostics: list[PolicyDiagnostic]) -> list[LinkInfo]:
    """The links of one ``*.links.json`` file; every problem a diagnostic with its line.
    ``taken`` (policy and link ids so far) grows with the links read."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        diagnostics.append(PolicyDiagnostic(name, f"malformed JSON: {exc.msg}", exc.lineno,
                                            exc.colno))
        return []
    if not isinstance(raw, list):
        diagnostics.append(PolicyDiagnostic(
            name, "must be a JSON array of links {template_id, link_id, args}", 1, 1))
        return []
    lines = _element_lines(text)
    found: list[LinkInfo] = []
    for i, item in enumerate(raw):
        line = lines[i] if i < len(lines) else None
        if not isinstance(item, Mapping):
            diagnostics.append(PolicyDiagnostic(name, f"link #{i + 1} must be an object", line))
            continue
        try:
            link = check_link(item.get("link_id"), item.get("template_id"), item.get("args"),
                              templates, schema_types, taken)
        except LinkError as exc:
            diagnostics.append(PolicyDiagnostic(name, exc.message, line))
            continue
        taken.add(link.link_id)
        found.append(LinkInfo(link.link_id, link.template_id, link.values, name, line))
    return found


def _element_lines(text: str) -> Sequence[int]:
    """The line on which each element of a top-level JSON array starts (strings skipped)."""
    lines: list[int] = []
    depth, line, i, n = 0, 1, 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        elif c == '"':
            if depth == 1:
                lines.append(line)  # a string element
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c in "[{":
            if depth == 1:
                lines.append(line)
            depth += 1
        elif c in "]}":
            depth -= 1
        elif depth == 1 and not c.isspace() and c != ",":
            lines.append(line)  # a scalar element
            while i + 1 < n and text[i + 1] not in ",]\n":
                i += 1
        i += 1
    return lines
