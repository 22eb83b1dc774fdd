"""A sound prefilter for subject and resource search, from Cedar's partial evaluation.

Deciding every stored candidate costs one Cedar evaluation each (tens of microseconds through
cedarpy), too slow for a search over 100,000 resources. So, once per search, the policies are
partially evaluated with everything known except the searched entity (Cedar's
``is_authorized_partial``: the searched ``principal`` or ``resource`` is unknown). What is left
of each ``permit`` policy is a *residual* condition over the unknown entity, e.g.
``resource.owner == user::"bob"``. The residuals are compiled here into Python closures and
run on each candidate's stored attributes and ancestors, with three-valued logic: true, false
or unknown. A candidate is dropped only when every permit residual is definitely false for it;
all the others are decided by the engine as usual, so the engine alone decides what is in the
results (every result evaluates to ``true`` through ``/access/v1/evaluation``). The prefilter
can only make search faster, never make it answer differently.

Unknown means "keep": any expression form not handled here, extension values, arithmetic,
entities other than the candidate that Cedar left unknown, missing attributes, and anything
that would be an evaluation error. ``forbid`` residuals are ignored (they can only remove
permits, and the engine applies them). When partial evaluation reports an error or fails,
or the request cannot be translated, there is no prefilter and every candidate is decided.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from pdp.authzen.model import Action, Entity, EvaluationRequest
from pdp.cedar._cedarpy import is_authorized_partial
from pdp.engine.translate import Translator
from pdp.entities.model import EntityUid, StoredEntity
from pdp.entities.store import EntityStore
from pdp.errors import PDPError, StoreUnavailable
from pdp.policies.compiled import CompiledPolicySet

__all__ = ["Prefilter"]

log = logging.getLogger("pdp.search")


class _Unknown:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()
_PLACEHOLDER = "\x00searched"  # id given to the searched entity while translating


class _Candidate:
    """The searched entity being tested: its stored attributes and (lazily) its ancestors."""

    __slots__ = ("uid", "attrs", "_store", "_ancestors")

    def __init__(self, entity: StoredEntity, store: EntityStore) -> None:
        self.uid = entity.uid
        self.attrs = entity.attrs
        self._store = store
        self._ancestors: frozenset[EntityUid] | None = None

    def ancestors(self) -> frozenset[EntityUid]:
        if self._ancestors is None:
            self._ancestors = _ancestors(self._store, self.uid)
        return self._ancestors


def _ancestors(store: EntityStore, uid: EntityUid) -> frozenset[EntityUid]:
    """Every ancestor of ``uid`` among the stored entities (transitively)."""
    seen: set[EntityUid] = set()
    frontier = [uid]
    while frontier:
        found = store.get_many(frontier)
        frontier = []
        for ent in found.values():
            for parent in ent.parents:
                if parent not in seen:
                    seen.add(parent)
                    frontier.append(parent)
    return frozenset(seen)


Evaluator = Callable[[_Candidate], Any]


class Prefilter:
    """Drops candidates no permit policy can allow; built per search request."""

    def __init__(self, residuals: Sequence[tuple[Sequence[Evaluator], Sequence[Evaluator]]],
                 store: EntityStore, known: EntityUid) -> None:
        self._residuals = residuals  # (when conditions, unless conditions) per permit
        self._store = store
        self._known = known  # the entity that is not searched

    @classmethod
    def build(cls, compiled: CompiledPolicySet, store: EntityStore, translator: Translator,
              searched: str, subject: Entity, action_name: str, resource: Entity,
              context: Mapping[str, Any] | None, policy_set: Any = None) -> Prefilter | None:
        """The prefilter for searching ``searched`` ("principal" or "resource"), or None
        when there is none to be had (the search then decides every candidate).
        ``policy_set`` is the set decisions use (with template links held in the store);
        the compiled set's when not given."""
        if policy_set is None:
            policy_set = compiled.policy_set
        if policy_set is None:
            return None
        try:
            cr = translator.translate(EvaluationRequest(
                Entity(subject.type, _PLACEHOLDER if searched == "principal" else subject.id,
                       None if searched == "principal" else subject.properties),
                Action(action_name),
                Entity(resource.type, _PLACEHOLDER if searched == "resource" else resource.id,
                       None if searched == "resource" else resource.properties),
                context))
        except PDPError:
            return None
        known, overlay = ((cr.resource, cr.resource_attrs) if searched == "principal"
                          else (cr.principal, cr.principal_attrs))
        entities = _known_entities(store, known, overlay)
        entities.append({"uid": {"type": cr.action[0], "id": cr.action[1]}, "attrs": {},
                         "parents": [{"type": cr.action[0], "id": p} for p in
                                     _action_parents(compiled, cr.action[1])]})
        request = {
            "principal": None if searched == "principal" else _uid_text(cr.principal),
            "action": _uid_text(cr.action),
            "resource": None if searched == "resource" else _uid_text(cr.resource),
            "context": orjson.dumps(cr.context).decode(),
        }
        try:
            raw = is_authorized_partial(request, policy_set, orjson.dumps(entities).decode())
            if raw["diagnostics"].get("errors"):
                return None  # some policy failed before the unknown mattered: decide all
            residuals = raw["residuals"]
        except StoreUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - partial evaluation is an optimisation only
            log.info("search without prefilter: partial evaluation failed: %s", exc)
            return None
        compiler = _Compiler(searched, store)
        permits = []
        for policy in residuals.values():
            if policy.get("effect") != "permit":
                continue
            when: list[Evaluator] = []
            unless: list[Evaluator] = []
            impossible = False
            for condition in policy.get("conditions", []):
                is_when = condition.get("kind") == "when"
                test = compiler.compile(condition.get("body"))
                if isinstance(test, _Const):  # decided by the partial evaluation already
                    if test.value is (not is_when):
                        impossible = True
                    if test.value in (True, False):
                        continue
                (when if is_when else unless).append(test)
            if impossible:
                continue
            if not when and not unless:
                return None  # a policy may permit every candidate: nothing to filter
            permits.append((when, unless))
        return cls(permits, store, known)

    def keep(self, ids: Sequence[str], entity_type: str) -> list[bool]:
        """For each candidate id: may some permit policy allow it?"""
        found = self._store.get_many([(entity_type, i) for i in ids])
        out = []
        for i in ids:
            entity = found.get((entity_type, i))
            if entity is None or entity.uid == self._known:
                # vanished meanwhile, or the very entity request properties may extend
                out.append(True)
                continue
            out.append(self._may_permit(_Candidate(entity, self._store)))
        return out

    def _may_permit(self, candidate: _Candidate) -> bool:
        for when, unless in self._residuals:
            verdict: Any = True
            for condition in when:
                value = condition(candidate)
                if value is False:
                    verdict = False
                    break
                if value is not True:
                    verdict = UNKNOWN
            if verdict is False:
                continue
            for condition in unless:
                value = condition(candidate)
                if value is True:
                    verdict = False
                    break
                if value is not False:
                    verdict = UNKNOWN
            if verdict is not False:
                return True
        return False


def _uid_text(uid: EntityUid) -> str:
    return f"{uid[0]}::{orjson.dumps(uid[1]).decode()}"


def _action_parents(compiled: CompiledPolicySet, action: str) -> tuple[str, ...]:
    types = compiled.schema_types
    if types is None:
        return ()
    return tuple(types.action_parents().get(action, ()))


def _known_entities(store: EntityStore, uid: EntityUid,
                    overlay: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The known principal or resource as the engine would build it, and all its ancestors
    (an incomplete hierarchy would make ``in`` wrongly false; missing entities are merely
    unknown to the partial evaluator)."""
    stored = store.get_many([uid]).get(uid)
    out: list[dict[str, Any]] = []
    if stored is not None or overlay:
        attrs = dict(overlay)
        parents: tuple[EntityUid, ...] = ()
        tags: Mapping[str, Any] | None = None
        if stored is not None:
            attrs.update(stored.attrs)  # stored attributes win, as in the engine
            parents, tags = stored.parents, stored.tags
        out.append(StoredEntity.build(uid[0], uid[1], attrs, parents, tags).to_cedar_json())
    ancestors = _ancestors(store, uid)
    out.extend(e.to_cedar_json() for e in store.get_many(ancestors).values())
    return out


# -- values: Cedar values as hashable, typed Python values --------------------------------------
#
# ("s", str) String, ("l", int) Long, ("b", bool) Bool, ("e", type, id) entity,
# ("S", frozenset) Set, ("R", tuple of sorted (name, value)) record; UNKNOWN otherwise.


def _value(raw: Any) -> Any:
    if isinstance(raw, bool):
        return ("b", raw)
    if isinstance(raw, int):
        return ("l", raw)
    if isinstance(raw, str):
        return ("s", raw)
    if isinstance(raw, list):
        items = [_value(v) for v in raw]
        if any(v is UNKNOWN for v in items):
            return UNKNOWN
        return ("S", frozenset(items))
    if isinstance(raw, dict):
        ref = raw.get("__entity")
        if ref is not None and len(raw) == 1 and isinstance(ref, dict):
            return ("e", str(ref.get("type")), str(ref.get("id")))
        if "__extn" in raw:
            return UNKNOWN
        fields = {k: _value(v) for k, v in raw.items()}
        if any(v is UNKNOWN for v in fields.values()):
            return UNKNOWN
        return ("R", tuple(sorted(fields.items())))
    return UNKNOWN


def _bool(value: Any) -> Any:
    """A Cedar Bool as True/False; anything else (an error in Cedar) is unknown."""
    if isinstance(value, tuple) and value[0] == "b":
        return value[1]
    return UNKNOWN


class _Compiler:
    """Residual expressions (Cedar's JSON expression form) → closures over a candidate."""

    def __init__(self, searched: str, store: EntityStore) -> None:
        self._searched = searched
        self._store = store

    def compile(self, node: Any) -> Evaluator:
        """A closure returning True/False for conditions (UNKNOWN when undecidable); a
        :class:`_Const` when the condition does not depend on the candidate."""
        expr = self._expr(node)
        if isinstance(expr, _Const):
            return _Const(_bool(expr.value))
        return lambda c: _bool(expr(c))

    def _expr(self, node: Any) -> Evaluator:  # noqa: C901 - one dispatch over node kinds
        if not isinstance(node, dict) or len(node) != 1:
            return _unknown
        (kind, arg), = node.items()
        if kind == "Value":
            return _Const(_value(arg))
        if kind == "unknown":
            name = arg[0].get("Value") if isinstance(arg, list) and arg and isinstance(
                arg[0], dict) else None
            if name == self._searched:
                return lambda c: ("e", c.uid[0], c.uid[1])
            return _unknown
        if kind == "Set" and isinstance(arg, list):
            parts = [self._expr(x) for x in arg]

            def make_set(c: _Candidate) -> Any:
                items = [p(c) for p in parts]
                return UNKNOWN if any(v is UNKNOWN for v in items) else ("S", frozenset(items))

            return make_set
        if kind == "Record" and isinstance(arg, dict):
            fields = [(k, self._expr(v)) for k, v in arg.items()]

            def make_record(c: _Candidate) -> Any:
                values = [(k, f(c)) for k, f in fields]
                if any(v is UNKNOWN for _, v in values):
                    return UNKNOWN
                return ("R", tuple(sorted(values)))

            return make_record
        if not isinstance(arg, dict):
            return _unknown
        if kind in ("&&", "||"):
            return self._logic(kind, self._expr(arg.get("left")), self._expr(arg.get("right")))
        if kind == "!":
            inner = self._expr(arg.get("arg"))

            def negate(c: _Candidate) -> Any:
                b = _bool(inner(c))
                return UNKNOWN if b is UNKNOWN else ("b", not b)

            return negate
        if kind == "if-then-else":
            test, then, other = (self._expr(arg.get(k)) for k in ("if", "then", "else"))

            def choose(c: _Candidate) -> Any:
                b = _bool(test(c))
                if b is UNKNOWN:
                    return UNKNOWN
                return then(c) if b else other(c)

            return choose
        if kind in (".", "has"):
            return self._attribute(kind, self._expr(arg.get("left")), arg.get("attr"))
        if kind == "is":
            return self._is(arg)
        left, right = self._expr(arg.get("left")), self._expr(arg.get("right"))
        if kind in ("==", "!="):
            negated = kind == "!="

            def equal(c: _Candidate) -> Any:
                a, b = left(c), right(c)
                if a is UNKNOWN or b is UNKNOWN:
                    return UNKNOWN
                return ("b", (a == b) != negated)

            return equal
        if kind in ("<", "<=", ">", ">="):
            return _compare(kind, left, right)
        if kind == "in":
            return self._in(left, right)
        if kind in ("contains", "containsAll", "containsAny"):
            return _set_test(kind, left, right)
        return _unknown

    @staticmethod
    def _logic(kind: str, left: Evaluator, right: Evaluator) -> Evaluator:
        stop = kind == "||"  # the value that decides without the right operand
        # Constant operands fold. An operand that would be an error in Cedar makes the whole
        # an error, which no answer given here can turn into a wrong permit.
        if isinstance(left, _Const):
            a = _bool(left.value)
            if a is stop:
                return _Const(("b", stop))
            if a is (not stop):
                return right
        if isinstance(right, _Const):
            b = _bool(right.value)
            if b is stop:
                return _Const(("b", stop))
            if b is (not stop):
                return left

        def logic(c: _Candidate) -> Any:
            a = _bool(left(c))
            if a is stop:
                return ("b", stop)
            b = _bool(right(c))
            if a is UNKNOWN:
                return ("b", stop) if b is stop else UNKNOWN
            return UNKNOWN if b is UNKNOWN else ("b", b)

        return logic

    def _attribute(self, kind: str, left: Evaluator, attr: Any) -> Evaluator:
        if not isinstance(attr, str):
            return _unknown
        store = self._store
        want_has = kind == "has"

        def access(c: _Candidate) -> Any:
            target = left(c)
            if not isinstance(target, tuple):
                return UNKNOWN
            if target[0] == "R":
                fields = dict(target[1])
                if want_has:
                    return ("b", attr in fields)
                return fields.get(attr, UNKNOWN)
            if target[0] != "e":
                return UNKNOWN
            uid = (target[1], target[2])
            if uid == c.uid:
                attrs = c.attrs
            else:
                entity = store.get_many([uid]).get(uid)
                if entity is None:
                    return UNKNOWN
                attrs = entity.attrs
            if want_has:
                # another entity's request properties or the slice depth may make Cedar see
                # it differently: only the candidate's own attributes are certain
                return ("b", attr in attrs) if uid == c.uid else UNKNOWN
            return _value(attrs[attr]) if attr in attrs else UNKNOWN

        return access

    def _is(self, arg: Mapping[str, Any]) -> Evaluator:
        left = self._expr(arg.get("left"))
        entity_type = arg.get("entity_type")
        within = self._in(left, self._expr(arg["in"])) if "in" in arg else None

        def test(c: _Candidate) -> Any:
            value = left(c)
            if not isinstance(value, tuple) or value[0] != "e":
                return UNKNOWN
            if value[1] != entity_type:
                return ("b", False)
            return ("b", True) if within is None else within(c)

        return test

    def _in(self, left: Evaluator, right: Evaluator) -> Evaluator:
        def test(c: _Candidate) -> Any:
            value, group = left(c), right(c)
            if value is UNKNOWN or group is UNKNOWN or value[0] != "e":
                return UNKNOWN
            uid = (value[1], value[2])
            if uid != c.uid:
                return UNKNOWN  # only the candidate's ancestors are known here
            if group[0] == "e":
                targets = {(group[1], group[2])}
            elif group[0] == "S" and all(g[0] == "e" for g in group[1]):
                targets = {(g[1], g[2]) for g in group[1]}
            else:
                return UNKNOWN
            return ("b", uid in targets or not targets.isdisjoint(c.ancestors()))

        return test


def _unknown(_: _Candidate) -> Any:
    return UNKNOWN


class _Const:
    """An expression whose value does not depend on the candidate."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self, _: _Candidate) -> Any:
        return self.value


def _compare(kind: str, left: Evaluator, right: Evaluator) -> Evaluator:
    def compare(c: _Candidate) -> Any:
        a, b = left(c), right(c)
        if a is UNKNOWN or b is UNKNOWN or a[0] != "l" or b[0] != "l":
            return UNKNOWN
        x, y = a[1], b[1]
        return ("b", x < y if kind == "<" else x <= y if kind == "<=" else
                x > y if kind == ">" else x >= y)

    return compare


def _set_test(kind: str, left: Evaluator, right: Evaluator) -> Evaluator:
    def test(c: _Candidate) -> Any:
        a, b = left(c), right(c)
        if a is UNKNOWN or b is UNKNOWN or a[0] != "S":
            return UNKNOWN
        if kind == "contains":
            return ("b", b in a[1])
        if b[0] != "S":
            return UNKNOWN
        return ("b", b[1] <= a[1] if kind == "containsAll" else not a[1].isdisjoint(b[1]))

    return test
