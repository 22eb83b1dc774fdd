"""What the engine derives from one policy version: compiled once per version.

A :class:`VersionState` holds, for one compiled policy set and the template links stored with
the entities, the translator, the ids of the permit policies (for the fail-closed rule), the
schema's action entities and their ancestors, the attributes request properties may set, the
slice index with the stored links and every link in force. The engine builds it after a
reload (:meth:`~pdp.engine.Engine.refresh`) and rebuilds it when stored links change, paying
only for the links that changed.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pdp.authzen.model import Decision
from pdp.caches import Memo
from pdp.cedar._cedarpy import link_templates
from pdp.engine.options import EngineOptions
from pdp.engine.reach import ancestors_of
from pdp.engine.translate import Translator
from pdp.entities.model import EntityUid, StoredEntity
from pdp.policies.compiled import CompiledPolicySet
from pdp.policies.index import SliceIndex
from pdp.policies.links import LinkInfo, LinkSet, stranded

__all__ = ["VersionState", "build", "with_links"]

_DECISIONS_KEPT = 4096  # native decisions without errors kept per policy version

log = logging.getLogger("pdp.engine")


@dataclass(frozen=True, slots=True)
class VersionState:
    """What the engine derives from one compiled policy set and the template links stored
    with the entities (rebuilt after a reload or a change of stored links)."""

    version: str
    compiled: CompiledPolicySet
    translator: Translator
    permits: frozenset[str]  # ids of the permit policies (an error in one is harmless)
    actions: Mapping[EntityUid, StoredEntity]  # the schema's action entities
    actions_json: tuple[bytes, ...]  # those of them Cedar needs (in or grouping a group)
    action_ancestors: Mapping[EntityUid, frozenset[EntityUid]]
    trusted: frozenset[str]  # attributes request properties may set on stored entities
    stored: LinkSet | None = None  # the store's links this state was made of
    index: SliceIndex | None = None  # the compiled index with the stored links (None: same)
    links: Mapping[str, LinkInfo] = field(default_factory=dict)  # every link in force
    _full: list[Any] = field(default_factory=list)  # the whole set with stored links, lazily

    # decisions of native answers without errors (see native_decision)
    decisions: Memo[tuple[bool, tuple[str, ...]], Decision] = field(
        default_factory=lambda: Memo(_DECISIONS_KEPT))

    @property
    def slices(self) -> SliceIndex:
        return self.index if self.index is not None else self.compiled.index

    def policy_set(self) -> Any:
        """The whole policy set as Cedar evaluates it, stored links included (a
        :mod:`pdp.cedar._cedarpy` policy set handle), built once."""
        if self.index is None:
            return self.compiled.policy_set
        if not self._full:
            stored = [x for x in self.links.values() if x.file is None]
            self._full.append(link_templates(self.compiled.policy_set, [
                {"template_id": x.template_id, "new_id": x.link_id,
                 "values": {k: {"type": t, "id": i} for k, (t, i) in x.values.items()}}
                for x in stored]))
        return self._full[0]


def build(compiled: CompiledPolicySet, stored: LinkSet | None, options: EngineOptions,
          trusted_properties: frozenset[str]) -> VersionState:
    """The state of ``compiled`` with the store's template links ``stored``:
    ``trusted_properties`` are the attributes the options let request properties set."""
    translator = Translator(compiled.schema_types, namespace=options.namespace,
                            action_properties_key=options.action_properties_key,
                            type_names=options.type_names)
    actions: dict[EntityUid, StoredEntity] = {}
    types = compiled.schema_types
    if types is not None:
        action_type = (options.namespace + "::" if options.namespace else "") + "Action"
        hierarchy = types.action_parents()
        grouping = {p for parents in hierarchy.values() for p in parents}
        for name, parents in hierarchy.items():
            ent = StoredEntity.build(action_type, name, {},
                                     tuple((action_type, p) for p in parents))
            actions[ent.uid] = ent
    else:
        grouping = set()
    ancestors = {uid: frozenset(ancestors_of(uid, {}, actions)) for uid in actions}
    # An action in no group and grouping none behaves in every expression exactly as an
    # absent entity (the schema gives actions no attributes), and each entity costs Cedar
    # a parse per call: only the others are sent. None is read from the store.
    sent = tuple(e.json for e in actions.values() if e.parents or e.id in grouping)
    permits = frozenset(p.id for p in compiled.policies if p.effect == "permit")
    trusted = trusted_properties | (types.trusted_attributes() if types is not None
                                    else frozenset())
    return with_links(VersionState(compiled.version, compiled, translator, permits, actions,
                                   sent, ancestors, trusted), stored)


def with_links(state: VersionState, stored: LinkSet | None) -> VersionState:
    """``state`` with the store's template links: those that fit the policy set are
    indexed with the static policies and the files' links; the others are left out,
    with an error logged (a link names a template that changed or went away). Against
    the same policy set, only the links that changed since ``state`` are checked and
    re-indexed (:meth:`SliceIndex.linked`), so a change costs what it changes."""
    compiled = state.compiled
    before = state.stored.by_id if state.stored is not None else {}
    now = stored.by_id if stored is not None else {}
    ids = stored.changed_since(state.stored) \
        if stored is not None and state.stored is not None else None
    if ids is not None:  # caught up from the store's log of changes
        added = [now[k] for k in ids if k in now]
        removed = [k for k in ids if k in before]
    else:
        added = [x for k, x in now.items() if before.get(k) is not x]
        removed = [k for k, x in before.items() if now.get(k) is not x]
    if not added and not removed and state.stored is not None:
        return dataclasses.replace(state, stored=stored)
    links = dict(state.links) if state.links else {x.link_id: x for x in compiled.links}
    for link_id in removed:
        links.pop(link_id, None)
    taken = {p.id for p in compiled.policies} | {x.link_id for x in compiled.links}
    unfit = dict(stranded(added, compiled.templates(), compiled.schema_types, taken))
    for link_id, problem in unfit.items():
        log.error("stored template link %s is not in force: %s", link_id, problem)
    fitting = [x for x in added if x.link_id not in unfit]
    links.update((x.link_id, x) for x in fitting)
    index = state.slices.linked(fitting, removed)
    version = f"{compiled.version}+{len(links)}"
    templates = compiled.templates()
    permits = frozenset(p.id for p in compiled.policies if p.effect == "permit") | {
        x.link_id for x in links.values()
        if x.template_id in templates and templates[x.template_id].effect == "permit"}
    return dataclasses.replace(state, version=version, stored=stored,
                               index=None if index is compiled.index else index,
                               links=links, permits=permits, _full=[])
