"""The engine's options: what every decision path takes from the settings."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from pdp.authzen.type_names import NO_TYPE_NAMES, TypeNames
from pdp.settings import Settings, SettingsModel

__all__ = ["EngineOptions"]


class EngineOptions(SettingsModel):
    """What the engine takes from :class:`pdp.settings.Settings` (built by
    :meth:`from_settings`; the defaults are the settings' own)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    namespace: str = Field(default="", description="Cedar namespace of the AuthZEN types "
                           "(PDP_NAMESPACE).")
    action_properties_key: str = Field(
        default="action_properties", description="The reserved context key action properties "
        "are passed under (PDP_ACTION_PROPERTIES_KEY).")
    entity_depth: int = Field(default=3, ge=0, description="How far the entity slice follows "
                              "attributes and parents (PDP_ENTITY_DEPTH).")
    decision_cache_bytes: int = Field(default=0, ge=0, description="Memory budget of the "
                                      "decision cache; 0: no cache.")
    closure_cache_size: int = Field(default=16_384, ge=0, description="Entity closures kept "
                                    "across calls (0: none).")
    type_names: TypeNames = Field(default=NO_TYPE_NAMES, description="AuthZEN types that are "
                                  "not Cedar names (PDP_TYPE_NAMES).")
    forbid_errors: str = Field(default="deny", pattern="^(deny|skip)$", description="'deny': a "
                               "forbid policy that errors denies; 'skip': Cedar's semantics.")
    trusted_properties: frozenset[str] = Field(
        default=frozenset(), description="Attributes request properties may set on a stored "
        "entity: 'attr' (any type) or 'type.attr' (AuthZEN type); any other property of a "
        "stored entity is ignored.")
    evaluator: str = Field(default="native", pattern="^(native|cedarpy)$", description="'native' "
                           "(pdp.cedar, cedarpy where it cannot) or 'cedarpy'.")

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
