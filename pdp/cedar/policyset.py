"""A compiled policy set: Cedar checks the text, this package compiles its JSON form."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import orjson

from pdp.cedar import _cedarpy, decode
from pdp.cedar.compiler import Compiler
from pdp.cedar.pieces import pieces
from pdp.cedar.runtime import EMPTY, Store
from pdp.cedar.scopes import ScopeIndex
from pdp.cedar.values import UID, EvalError
from pdp.errors import CedarInputError

__all__ = ["PolicySet", "Answer", "Bound"]

PolicyFn = Callable[..., bool]
_Entry = tuple[str, bool, PolicyFn | None]  # a policy's id, whether a forbid, its code
# the policies that apply (permits, forbids) and those that err, with their messages
_Fixed = tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, str], ...]]
_NUMBERED = re.compile(r"(.*?)(\d+)")
_INDEX_FROM = 16  # smaller sets are evaluated whole: the index costs more than it saves
# Generated source compiled at once. ``compile`` holds the interpreter lock throughout (about
# 10 ms for this much): a large set is compiled piece by piece, so that the threads serving
# requests while a reload compiles are never kept waiting longer than that.
_SOURCE_CHUNK = 8_192


class Answer(NamedTuple):
    """Cedar's answer: the decision, the determining policies and the erroring ones."""

    allow: bool
    reasons: tuple[str, ...]
    errors: tuple[tuple[str, str], ...]


_answer = tuple.__new__
_NOTHING = Answer(False, (), ())  # no policy applies, none errs


def _order(pid: str) -> tuple[str, int, str]:
    m = _NUMBERED.fullmatch(pid)
    return (m.group(1), int(m.group(2)), "") if m else (pid, -1, pid)


class PolicySet:
    """Cedar policy text, parsed by Cedar and compiled to Python once.

    Raises :class:`~pdp.errors.CedarInputError` with Cedar's message when Cedar rejects the
    text. ``native_reason`` is ``None`` when every policy compiled, else the construct that did
    not (the set is then evaluated by cedarpy as a whole).
    """

    __slots__ = ("text", "cedar", "ids", "native_reason", "_policies", "_est", "_index",
                 "_indexed", "_contextual")

    def __init__(self, text: str, *, _cedar: Any = None, _est: Mapping[str, Any] | None = None
                 ) -> None:
        self.text = text
        try:
            self.cedar = _cedar if _cedar is not None else _cedarpy.parse_policies(text)
            est = _est if _est is not None else orjson.loads(_cedarpy.policies_to_json(text))
        except (CedarInputError, ValueError) as e:  # (Cedar's, or its JSON unreadable)
            raise CedarInputError(f"invalid policies: {e}") from None
        self._est = est
        static: dict[str, Any] = dict(est.get("staticPolicies") or {})
        templates: dict[str, Any] = est.get("templates") or {}
        linked: list[tuple[str, Any, dict[str, UID]]] = []
        for link in est.get("templateLinks") or []:
            tpl = templates.get(link.get("templateId"))
            if tpl is None:
                linked = []
                break
            linked.append((link["newId"], tpl, {
                k: decode.uid(v) for k, v in (link.get("values") or {}).items()}))
        self.ids: tuple[str, ...] = tuple(sorted([*static, *(n for n, _, _ in linked)],
                                                  key=_order))
        self.native_reason: str | None = None
        self._policies: tuple[tuple[str, bool, PolicyFn], ...] = ()  # (every code given)
        self._index: ScopeIndex | None = None
        self._indexed: tuple[tuple[str, bool, PolicyFn | None], ...] = ()
        self._contextual: frozenset[PolicyFn] = frozenset()  # the code reading the context
        try:
            self._compile(static, linked)
        except (decode.Unsupported, KeyError, TypeError, ValueError, AttributeError) as e:
            self.native_reason = f"{type(e).__name__}: {e}" if not isinstance(
                e, decode.Unsupported) else str(e)
        except (RecursionError, MemoryError, SyntaxError) as e:
            self.native_reason = f"policy too complex to compile: {type(e).__name__}"

    def _compile(self, static: Mapping[str, Any],
                 linked: Sequence[tuple[str, Any, dict[str, UID]]]) -> None:
        comp = Compiler()
        entries: list[tuple[str, Any, Mapping[str, UID] | None]] = [
            (pid, est, None) for pid, est in static.items()]
        entries += [(pid, est, slots) for pid, est, slots in linked]
        entries.sort(key=lambda e: _order(e[0]))
        indexed = len(entries) >= _INDEX_FROM
        names = []
        for i, (pid, est, slots) in enumerate(entries):
            comp.policy(f"_p{i}", est, slots)
            names.append((pid, f"_p{i}", est.get("effect")))
            if indexed:  # the same without the scope tests the index makes
                comp.policy(f"_q{i}", est, slots, indexed=True)
        ns = comp.namespace()
        for source in pieces(comp.lines, _SOURCE_CHUNK):
            exec(compile(source, "<cedar policies>", "exec"), ns)  # noqa: S102
        self._contextual = frozenset(ns[name] for name in comp.contextual)
        policies = []
        for pid, fname, effect in names:
            if effect not in ("permit", "forbid"):
                raise decode.Unsupported(f"effect {effect!r:.40}")
            policies.append((pid, effect == "forbid", ns[fname]))
        self._policies = tuple(policies)
        if indexed:
            self._index = ScopeIndex([e for _, e, _ in entries], [s for _, _, s in entries])
            self._indexed = tuple(
                (pid, forbid, None if sure else ns[f"_q{i}"])
                for i, ((pid, forbid, _), sure) in enumerate(
                    zip(self._policies, self._index.sure, strict=True)))

    def link(self, template_id: str, new_id: str, values: Mapping[str, Any]) -> PolicySet:
        """A new set with the template ``template_id`` linked as policy ``new_id`` (slot
        values are entity uids ``{"type", "id"}``); Cedar checks the link."""
        try:
            cedar = _cedarpy.link_template(self.cedar, template_id, new_id, values)
        except CedarInputError as e:
            raise CedarInputError(f"invalid template link: {e.message}") from None
        est = dict(self._est)
        tpl_id = next((t["id"] for t in _cedarpy.templates(cedar)
                       if new_id in (link["id"] for link in t["links"])), template_id)
        est["templateLinks"] = [*(est.get("templateLinks") or []), {
            "templateId": tpl_id, "newId": new_id,
            "values": {k: _uid_json(v) for k, v in values.items()}}]
        return PolicySet(self.text, _cedar=cedar, _est=est)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], cedar: Any) -> PolicySet:
        """A set from Cedar's JSON policy form, read (plain JSON values, not changed
        afterwards), with the cedarpy ``PolicySet`` of the same policies (for the fallback);
        ``text`` is then empty."""
        return cls("", _cedar=cedar, _est=doc)

    def subset(self, ids: Iterable[str], cedar: Any) -> PolicySet:
        """The policies ``ids`` of this set, sharing its compiled code (``cedar``: a cedarpy
        ``PolicySet`` of the same policies, for the fallback). An id this set does not hold
        makes the subset not native (it is then left to ``cedar``): a policy is never dropped."""
        wanted = set(ids)
        part = object.__new__(PolicySet)
        part.text, part.cedar, part._est = self.text, cedar, self._est
        part.ids = tuple(i for i in self.ids if i in wanted)
        missing = wanted.difference(part.ids)
        part.native_reason = self.native_reason or (
            f"policies not compiled: {', '.join(sorted(missing)[:3])}" if missing else None)
        part._policies = tuple(p for p in self._policies if p[0] in wanted)
        part._index = None
        part._contextual = self._contextual
        return part

    @property
    def native(self) -> bool:
        return self.native_reason is None

    def __len__(self) -> int:
        return len(self.ids)

    def evaluate(self, principal: UID, action: UID, resource: UID, context: dict[str, Any],
                 store: Store) -> Answer:
        """Cedar's authorization over this set (only when :attr:`native`)."""
        return self.bind(principal, action, resource, store).evaluate(context)

    def bind(self, principal: UID, action: UID, resource: UID, store: Store, *,
             fold: bool = False) -> Bound:
        """:meth:`evaluate` for these roots over ``store``, all but the context: the roots'
        ancestors and the policies whose scopes can hold are found once, here. ``fold``:
        the policies whose code does not read the context are evaluated here too, once (they
        answer alike for every context, over the same store); the bound set then evaluates
        only the others per request (the answer's policies may come in another order)."""
        anc = store.ancestors
        pa, aa, ra = anc.get(principal, EMPTY), anc.get(action, EMPTY), anc.get(resource, EMPTY)
        index = self._index
        entries: tuple[_Entry, ...] = self._policies if index is None else tuple(
            map(self._indexed.__getitem__,
                index.candidates(principal, action, resource, pa, aa, ra)))
        bound = Bound(entries, (principal, action, resource), store, (pa, aa, ra))
        return bound.folded(self._contextual) if fold else bound


_NO_CONTEXT: dict[str, Any] = {}  # what code that does not read the context is given


class Bound:
    """A policy set bound to one request's roots and store (:meth:`PolicySet.bind`):
    :meth:`evaluate` takes the context. The engine keeps one with each plan, so that a
    request repeating a plan's roots skips the scope index, and the policies that do not
    read the context."""

    __slots__ = ("_entries", "_roots", "_store", "_ancestors", "_fixed", "_answer")

    def __init__(self, entries: tuple[_Entry, ...], roots: tuple[UID, UID, UID], store: Store,
                 ancestors: tuple[frozenset[UID], frozenset[UID], frozenset[UID]],
                 fixed: _Fixed = ((), (), ())) -> None:
        self._entries = entries  # (id, whether a forbid, its code; None: it applies)
        self._roots = roots  # principal, action, resource
        self._store = store
        self._ancestors = ancestors  # theirs, transitive
        self._fixed = fixed  # what the policies evaluated once answered (see folded)
        # the whole answer, when no policy is left to evaluate per request
        self._answer = None if entries else _answer_of(*fixed)

    def folded(self, contextual: frozenset[PolicyFn]) -> Bound:
        """This set with each policy whose code is not in ``contextual`` evaluated now (a
        policy that fails otherwise than Cedar's errors stays to fail per request)."""
        permits: list[str] = []
        forbids: list[str] = []
        errors: list[tuple[str, str]] = []
        left: list[_Entry] = []
        principal, action, resource = self._roots
        pa, aa, ra = self._ancestors
        for entry in self._entries:
            pid, forbid, code = entry
            if code is not None and code in contextual:
                left.append(entry)
                continue
            try:
                if code is None or code(principal, action, resource, _NO_CONTEXT, self._store,
                                        pa, aa, ra):
                    (forbids if forbid else permits).append(pid)
            except EvalError as e:
                errors.append((pid, str(e)))
            except Exception:  # noqa: BLE001 - (RecursionError too) left to fail per request
                left.append(entry)
        return Bound(tuple(left), self._roots, self._store, self._ancestors,
                     (tuple(permits), tuple(forbids), tuple(errors)))

    def evaluate(self, context: dict[str, Any]) -> Answer:
        """Cedar's answer: each policy that applies, and each that errs."""
        found = self._answer
        if found is not None:
            return found
        fixed = self._fixed
        permits, forbids, errors = list(fixed[0]), list(fixed[1]), list(fixed[2])
        principal, action, resource = self._roots
        pa, aa, ra = self._ancestors
        store = self._store
        for pid, forbid, code in self._entries:
            if code is None:  # no condition, and the index has checked its scopes
                (forbids if forbid else permits).append(pid)
                continue
            try:
                if code(principal, action, resource, context, store, pa, aa, ra):
                    (forbids if forbid else permits).append(pid)
            except EvalError as e:
                errors.append((pid, str(e)))
            except RecursionError:
                errors.append((pid, "value nested too deeply"))
        return _answer_of(permits, forbids, errors)


def _answer_of(permits: Sequence[str], forbids: Sequence[str],
               errors: Sequence[tuple[str, str]]) -> Answer:
    """Cedar's answer from the policies that apply and those that err."""
    # (tuple.__new__: a NamedTuple's own constructor is a Python function, called per
    # decision)
    if forbids:
        return _answer(Answer, (False, tuple(forbids), tuple(errors) if errors else ()))
    if errors:
        return _answer(Answer, (bool(permits), tuple(permits), tuple(errors)))
    return _answer(Answer, (True, tuple(permits), ())) if permits else _NOTHING


def _uid_json(v: Any) -> dict[str, str]:
    if isinstance(v, Mapping):
        return {"type": str(v["type"]), "id": str(v["id"])}
    raise CedarInputError(f"a slot value must be an entity uid {{type, id}}, not {v!r:.100}")
