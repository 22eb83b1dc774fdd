"""The engine's options: what every decision path takes from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from pdp.authzen.type_names import NO_TYPE_NAMES, TypeNames
from pdp.settings import Settings

__all__ = ["EngineOptions"]


@dataclass(frozen=True, slots=True)
class EngineOptions:
    namespace: str = ""
    action_properties_key: str = "action_properties"
    entity_depth: int = 3
    decision_cache_bytes: int = 0  # memory budget of the decision cache; 0: no cache
    closure_cache_size: int = 16_384  # entity closures kept across calls (0: none)
    type_names: TypeNames = NO_TYPE_NAMES  # AuthZEN types that are not Cedar names
    # "deny": a forbid policy that errors denies; "skip": Cedar's semantics (it is skipped)
    forbid_errors: str = "deny"
    # Attributes request properties may set on a stored entity: "attr" (any type) or
    # "type.attr" (AuthZEN type). Any other property of a stored entity is ignored.
    trusted_properties: frozenset[str] = frozenset()
    evaluator: str = "native"  # "native" (pdp.cedar, cedarpy where it cannot) or "cedarpy"

    @classmethod
    def from_settings(cls, settings: Settings, *, decision_cache: bool = True,
                      ) -> EngineOptions:
        """The options every decision path (server, ``pdp test``, ``pdp eval``, search, the
        gateway) takes from the settings."""
        return cls(
            namespace=settings.namespace,
            action_properties_key=settings.action_properties_key,
            entity_depth=settings.entity_depth,
            decision_cache_bytes=(settings.decision_cache_bytes
                                  if decision_cache and settings.decision_cache == "on" else 0),
            forbid_errors=settings.forbid_errors,
            trusted_properties=frozenset(settings.trusted_properties),
            type_names=TypeNames(settings.type_names),
            evaluator=settings.evaluator)
