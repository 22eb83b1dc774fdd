"""Building the configured entity store, and the schema-aware validator for entity writes.

``PDP_ENTITY_STORE=sql`` (the default) opens :class:`~pdp.entities.sql.SQLEntityStore` at
``PDP_DATABASE_URL`` or, unset, the SQLite file ``$PDP_DATA_DIR/entities.db``, and applies the
policy set's ``entities.json`` to it as file-managed entities. ``memory`` keeps only
``entities.json``, in memory (no database, no entity administration).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pdp.entities.model import StoredEntity
from pdp.entities.sql import SQLEntityStore
from pdp.entities.store import InMemoryEntityStore, MutableEntityStore
from pdp.entities.validate import EntityValidator
from pdp.policies.compiled import CompiledPolicySet
from pdp.settings import Settings

__all__ = ["open_entity_store", "open_sql_store", "validator_for"]


def open_sql_store(settings: Settings) -> SQLEntityStore:
    """The SQL store the settings name (StoreUnavailable if it cannot be reached)."""
    return SQLEntityStore.open(
        SQLEntityStore.url_for(settings.database_url, settings.data_dir),
        poll_interval=settings.poll_interval,
        max_staleness=max(settings.entity_max_staleness, settings.poll_interval))


def open_entity_store(settings: Settings,
                      file_entities: Iterable[Mapping[str, Any]]) -> MutableEntityStore:
    """The configured store, with the policy set's ``entities.json`` applied."""
    if settings.entity_store == "memory":
        return InMemoryEntityStore(StoredEntity.from_cedar_json(e) for e in file_entities)
    store = open_sql_store(settings)
    try:
        store.replace_file_managed(file_entities)
    except BaseException:
        store.close()
        raise
    return store


def validator_for(current: Callable[[], CompiledPolicySet]) -> Callable[[], EntityValidator]:
    """Validators for the schema of whichever policy set is current when a write happens."""

    def validator() -> EntityValidator:
        compiled = current()
        return EntityValidator(compiled.schema, compiled.schema_types)

    return validator
