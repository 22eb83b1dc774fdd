"""The settings object: a setting that was replaced stops the PDP with a message saying what
replaced it, rather than being ignored; the settings models derived from it are declared in
one style (frozen pydantic models, every field described) and refuse bad values with the
PDP's own error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

import pdp
from pdp.errors import ConfigurationError, InvalidSettings
from pdp.search import SearchOptions
from pdp.settings import Settings, SettingsModel, TokenIssuer


def test_the_replaced_decision_cache_size_is_refused_naming_its_replacement(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDP_DECISION_CACHE_SIZE", "1000")
    with pytest.raises(ValidationError, match="PDP_DECISION_CACHE_BYTES"):
        Settings()


def test_the_decision_cache_budget_is_in_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDP_DECISION_CACHE_BYTES", "1048576")
    assert Settings().decision_cache_bytes == 1_048_576


# -- the settings models derived from the settings ----------------------------------------------


def _settings_models() -> list[type[BaseModel]]:
    import pdp.search.searcher  # noqa: F401  (each module declaring a model registers it)
    import pdp.tokens.settings  # noqa: F401

    found: list[type[BaseModel]] = []
    pending: list[type[BaseModel]] = [SettingsModel]
    while pending:
        model = pending.pop()
        found.extend(model.__subclasses__())
        pending.extend(model.__subclasses__())
    return found


def test_every_settings_model_field_has_a_description() -> None:
    models = [Settings, TokenIssuer, *_settings_models()]
    assert {"TokenSettings", "IssuerSettings", "IntrospectionSettings", "SearchOptions"} <= {
        m.__name__ for m in models}
    missing = [f"{model.__name__}.{name}" for model in models
               for name, field in model.model_fields.items() if not field.description]
    assert not missing


def test_every_settings_model_is_frozen_and_refuses_unknown_fields() -> None:
    for model in _settings_models():
        assert model.model_config.get("frozen") and model.model_config.get("extra") == "forbid"
    options = SearchOptions()
    with pytest.raises(ValidationError):
        options.max_scan = 5  # type: ignore[misc]
    with pytest.raises(InvalidSettings, match="SearchOptions: max_scans: Extra inputs"):
        SearchOptions(max_scans=5)  # type: ignore[call-arg]


def test_a_refused_value_is_a_configuration_error_naming_the_model_and_the_field() -> None:
    with pytest.raises(InvalidSettings) as refused:
        SearchOptions(batch_size=0)
    assert isinstance(refused.value, ConfigurationError)
    assert refused.value.message == (
        "SearchOptions: batch_size: Input should be greater than or equal to 1")


def test_settings_are_declared_in_one_style() -> None:
    """No frozen dataclass declares settings (pydantic models do), but for the COAZ mapping's
    options: ``pdp.coaz`` is pure and loads no pydantic (tests/test_light_imports.py)."""
    declared = re.compile(r"@dataclass[^\n]*\nclass (\w+(?:Settings|Options|Config))\b")
    package = Path(pdp.__file__).parent
    found = {name for path in package.rglob("*.py")
             for name in declared.findall(path.read_text(encoding="utf-8"))}
    assert found <= {"MappingOptions"}, found
