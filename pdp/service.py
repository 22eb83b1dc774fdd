"""The PDP as a framework-free service: policies + entity store + engine, wired once.

HTTP routes, the CLI and the MCP gateway (in-process mode) all call this object; it takes
parsed JSON bodies and returns response bodies, knowing nothing of any web framework.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pdp.authzen import (
    Decision,
    EvaluationRequest,
    apply_semantic,
    build_metadata,
    item_error,
    parse_evaluations,
)
from pdp.engine import Engine, EngineOptions
from pdp.entities import InMemoryEntityStore, StoredEntity
from pdp.errors import PDPError
from pdp.policies.holder import PolicyHolder
from pdp.settings import Settings

__all__ = ["PDPService"]

log = logging.getLogger("pdp")


@dataclass
class PDPService:
    settings: Settings
    policies: PolicyHolder
    store: InMemoryEntityStore
    engine: Engine

    @classmethod
    def from_settings(cls, settings: Settings) -> PDPService:
        """Load the configured policy set (raising PolicyLoadError if invalid) and wire up."""
        holder = PolicyHolder.load(settings.policies_dir())
        store = InMemoryEntityStore(
            StoredEntity.from_cedar_json(e) for e in holder.current.entities)
        engine = Engine(holder, store, EngineOptions(
            namespace=settings.namespace,
            action_properties_key=settings.action_properties_key,
            entity_depth=settings.entity_depth))
        return cls(settings, holder, store, engine)

    # -- AuthZEN --------------------------------------------------------------------------

    def decide(self, requests: list[EvaluationRequest]) -> list[Decision]:
        return self.engine.decide(requests)

    def evaluation(self, request: EvaluationRequest, *, explain: bool = False) -> dict[str, Any]:
        return self.engine.decide([request])[0].to_wire(explain)

    def evaluations(self, body: Any, *, explain: bool = False) -> dict[str, Any]:
        """``/access/v1/evaluations``: defaults, per-item errors and the three semantics."""
        parsed = parse_evaluations(body, max_items=self.settings.max_batch)
        if parsed.single:
            item = parsed.items[0]
            assert isinstance(item, EvaluationRequest)
            return self.evaluation(item, explain=explain)
        valid = [(i, it) for i, it in enumerate(parsed.items)
                 if isinstance(it, EvaluationRequest)]
        decided = self.engine.decide([it for _, it in valid])
        results: list[Decision | None] = [None] * len(parsed.items)
        for (i, _), d in zip(valid, decided, strict=True):
            results[i] = d
        for i, it in enumerate(parsed.items):
            if isinstance(it, PDPError):
                results[i] = item_error(it)
        final = apply_semantic([d for d in results if d is not None], parsed.semantic)
        return {"evaluations": [d.to_wire(explain) for d in final]}

    def metadata(self) -> dict[str, Any]:
        return build_metadata(self.settings.base_url(), search=False)

    def status(self) -> Mapping[str, Any]:
        current = self.policies.current
        failure = self.policies.last_failure
        return {
            "policy_set": {
                "version": current.version,
                "directory": str(current.directory),
                "loaded_at": current.loaded_at.isoformat(),
                "policies": len(current.policies),
                "files": list(current.files),
            },
            "entities": {"count": len(self.store), "version": self.store.version},
            "last_reload_error": None if failure is None else {
                "at": failure.at.isoformat(),
                "diagnostics": [d.to_dict() for d in failure.error.diagnostics],
            },
        }
