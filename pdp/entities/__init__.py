"""The entity store (PIP): stored attributes and parents of subjects and resources."""

from pdp.entities.model import EntityUid, StoredEntity, entity_refs
from pdp.entities.store import EntityStore, InMemoryEntityStore

__all__ = ["EntityStore", "EntityUid", "InMemoryEntityStore", "StoredEntity", "entity_refs"]
