"""The decision engine: SARC → Cedar translation, entity slicing and evaluation."""

from pdp.engine.engine import Engine, EngineOptions
from pdp.engine.translate import CedarRequest, Translator, cedar_name_ok

__all__ = ["CedarRequest", "Engine", "EngineOptions", "Translator", "cedar_name_ok"]
