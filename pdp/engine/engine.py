"""The decision engine: AuthZEN requests in, decisions out, always as a batch.

Per request: translate SARC to Cedar, gather the entity slice the request can reach
(principal, resource, their ancestors, entities their attributes reference up to a bounded
depth), pick the policy slice from the compiled index, evaluate with Cedar. Any error on the
way is a deny carrying the reason, and is logged: the engine fails closed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from pdp.authzen.model import Decision, EvaluationRequest
from pdp.engine._cedar import authorize_batch
from pdp.engine.translate import CedarRequest, Translator
from pdp.entities.model import EntityUid, StoredEntity, entity_refs
from pdp.entities.store import EntityStore
from pdp.errors import PDPError, StoreUnavailable, TranslationError
from pdp.policies.compiled import CompiledPolicySet

__all__ = ["Engine", "EngineOptions"]

log = logging.getLogger("pdp.engine")


@dataclass(frozen=True, slots=True)
class EngineOptions:
    namespace: str = ""
    action_properties_key: str = "action_properties"
    entity_depth: int = 3


@dataclass(frozen=True, slots=True)
class _Prepared:
    index: int
    cedar: dict[str, Any]
    entities: dict[EntityUid, bytes]
    policy_set: Any


class Engine:
    """Decides batches of AuthZEN requests against the current policy set and entity store.

    ``policies`` is a zero-argument callable returning the current compiled set, so a reload
    that swaps it is seen by the next batch, and a batch never mixes two versions.
    """

    def __init__(self, policies: Callable[[], CompiledPolicySet], store: EntityStore,
                 options: EngineOptions | None = None) -> None:
        self._policies = policies
        self._store = store
        self._options = options or EngineOptions()
        self._translator_for: tuple[str, Translator] | None = None
        self._action_entities_for: tuple[str, dict[EntityUid, bytes]] | None = None

    @property
    def store(self) -> EntityStore:
        return self._store

    def current(self) -> CompiledPolicySet:
        return self._policies()

    def decide(self, requests: Sequence[EvaluationRequest]) -> list[Decision]:
        compiled = self._policies()
        translator = self._translator(compiled)
        decisions: list[Decision | None] = [None] * len(requests)
        prepared: list[_Prepared] = []
        for i, req in enumerate(requests):
            try:
                prepared.append(self._prepare(i, req, compiled, translator))
            except TranslationError as exc:
                decisions[i] = Decision(False, "error",
                                        error={"status": 400, "message": exc.message})
            except StoreUnavailable:
                raise
            except PDPError as exc:
                log.warning("request %d could not be prepared: %s", i, exc.message)
                decisions[i] = Decision(False, "error", errors=(exc.message,))
        for group in _groups(prepared):
            self._evaluate(group, decisions)
        return [d if d is not None else Decision(False, "error", errors=("not evaluated",))
                for d in decisions]

    # -- preparation ----------------------------------------------------------------------

    def _translator(self, compiled: CompiledPolicySet) -> Translator:
        cached = self._translator_for
        if cached is not None and cached[0] == compiled.version:
            return cached[1]
        translator = Translator(compiled.schema_types, namespace=self._options.namespace,
                                action_properties_key=self._options.action_properties_key)
        self._translator_for = (compiled.version, translator)
        return translator

    def _prepare(self, i: int, req: EvaluationRequest, compiled: CompiledPolicySet,
                 translator: Translator) -> _Prepared:
        cr = translator.translate(req)
        entities = self._slice(cr)
        entities.update(self._action_entities(compiled))
        policy_set = compiled.index.select(cr.action[1], cr.principal[0], cr.principal[1],
                                           cr.resource[0], cr.resource[1])
        cedar = {
            "principal": {"type": cr.principal[0], "id": cr.principal[1]},
            "action": {"type": cr.action[0], "id": cr.action[1]},
            "resource": {"type": cr.resource[0], "id": cr.resource[1]},
            "context": orjson.dumps(cr.context).decode(),
        }
        return _Prepared(i, cedar, entities, policy_set)

    def _action_entities(self, compiled: CompiledPolicySet) -> dict[EntityUid, bytes]:
        cached = self._action_entities_for
        if cached is not None and cached[0] == compiled.version:
            return cached[1]
        out: dict[EntityUid, bytes] = {}
        types = compiled.schema_types
        if types is not None:
            action_type = (self._options.namespace + "::" if self._options.namespace
                           else "") + "Action"
            for name, parents in types.action_parents().items():
                ent = StoredEntity.build(action_type, name, {},
                                         tuple((action_type, p) for p in parents))
                out[ent.uid] = ent.json
        self._action_entities_for = (compiled.version, out)
        return out

    def _slice(self, cr: CedarRequest) -> dict[EntityUid, bytes]:
        """The entities this request can reach, as Cedar entity JSON fragments."""
        store = self._store
        found: dict[EntityUid, StoredEntity] = dict(store.get_many((cr.principal, cr.resource)))
        out: dict[EntityUid, bytes] = {}
        frontier: list[tuple[EntityUid, int]] = []
        overlays: dict[EntityUid, dict[str, Any]] = {}
        if cr.principal_attrs:
            overlays[cr.principal] = dict(cr.principal_attrs)
        if cr.resource_attrs:
            overlays.setdefault(cr.resource, {}).update(cr.resource_attrs)
        for uid in (cr.principal, cr.resource):
            if uid in out:
                continue
            stored = found.get(uid)
            extra = overlays.get(uid)
            if extra is not None:
                attrs = dict(extra)
                parents: tuple[EntityUid, ...] = ()
                if stored is not None:
                    attrs.update(stored.attrs)  # stored attributes win
                    parents = stored.parents
                ent = StoredEntity.build(uid[0], uid[1], attrs, parents)
                out[uid] = ent.json
                frontier.append((uid, 0))
                found[uid] = ent
            elif stored is not None:
                out[uid] = stored.json
                frontier.append((uid, 0))
        depth_limit = self._options.entity_depth
        seen = set(out)
        while frontier:
            next_uids: list[tuple[EntityUid, int]] = []
            for uid, depth in frontier:
                ent = found[uid]
                for parent in ent.parents:  # ancestors: always complete
                    if parent not in seen:
                        next_uids.append((parent, depth))
                if depth < depth_limit:
                    refs: list[EntityUid] = []
                    entity_refs(ent.attrs, refs)
                    next_uids.extend((r, depth + 1) for r in refs if r not in seen)
            wanted = [u for u, _ in next_uids if u not in seen]
            if not wanted:
                break
            fetched = store.get_many(wanted)
            frontier = []
            for uid, depth in next_uids:
                if uid in seen:
                    continue
                seen.add(uid)
                ent2 = fetched.get(uid)
                if ent2 is not None:
                    found[uid] = ent2
                    out[uid] = ent2.json
                    frontier.append((uid, depth))
        return out

    # -- evaluation -----------------------------------------------------------------------

    def _evaluate(self, group: Sequence[_Prepared], decisions: list[Decision | None]) -> None:
        merged: dict[EntityUid, bytes] = {}
        for p in group:
            merged.update(p.entities)
        entities_json = (b"[" + b",".join(merged.values()) + b"]").decode()
        try:
            answers = authorize_batch([p.cedar for p in group], group[0].policy_set,
                                      entities_json)
        except Exception as exc:  # noqa: BLE001 - any engine failure is a deny
            log.error("cedar evaluation failed: %s", exc)
            for p in group:
                decisions[p.index] = Decision(False, "error", errors=("evaluation failed",))
            return
        for p, answer in zip(group, answers, strict=True):
            decisions[p.index] = _decision(answer)


def _decision(answer: Mapping[str, Any]) -> Decision:
    diagnostics = answer.get("diagnostics") or {}
    reasons = tuple(diagnostics.get("reason") or ())
    errors = tuple(diagnostics.get("errors") or ())
    verdict = answer.get("decision")
    if verdict == "Allow":
        return Decision(True, "permit", reasons, errors)
    if verdict == "Deny":
        outcome = "forbid" if reasons else ("error" if errors else "no_permit")
        return Decision(False, outcome, reasons, errors)
    log.error("cedar returned no decision: %s", "; ".join(errors) or verdict)
    return Decision(False, "error", (), errors or ("no decision",))


def _groups(prepared: Sequence[_Prepared]) -> list[list[_Prepared]]:
    """Requests that can share one Cedar call: same policy slice, no conflicting entities."""
    groups: list[list[_Prepared]] = []
    current: list[_Prepared] = []
    merged: dict[EntityUid, bytes] = {}
    for p in prepared:
        compatible = bool(current) and p.policy_set is current[0].policy_set and all(
            merged.get(uid, data) == data for uid, data in p.entities.items())
        if current and not compatible:
            groups.append(current)
            current, merged = [], {}
        current.append(p)
        merged.update(p.entities)
    if current:
        groups.append(current)
    return groups
