"""The method table: what a deployment says about MCP methods beyond the default mappings
(docs/spec/coaz.md, "Dialect 2": default mappings, pass-through, "any other method without a
mapping is denied").

A table maps a method name to one of:

* ``"allow"``: forward without asking the PDP (as ``ping``);
* ``"deny"``: refuse without asking the PDP (the binding's deny code);
* a mapping: an ``x-authzen-mapping`` envelope (``{"evaluation": {...}}`` or
  ``{"evaluations": {...}}``) whose ``$`` strings are CEL over ``params`` (the JSON-RPC
  ``params``) and ``token``, exactly as a tool's binding mapping (:mod:`pdp.coaz.binding`),
  with the same subject anchoring.

The table is consulted before the default mappings, so it may also replace a default row (for
example ``completion/complete``). ``tools/call`` (decided by the tools' own mappings), ``ping``
and ``notifications/*`` (always passed) cannot be configured. A method that is neither in the
table nor in the defaults is still denied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from pdp.coaz.binding import BINDING_MAPPING_KEY, compile_binding_mapping, new_cel_env
from pdp.coaz.compiled import CompiledMapping
from pdp.errors import MappingError

__all__ = ["MethodRule", "MethodTable"]

_FIXED = ("tools/call", "ping")


@dataclass(frozen=True, slots=True)
class MethodRule:
    """``kind`` ``allow`` or ``deny``, or ``map`` with its compiled ``mapping``."""

    kind: Literal["allow", "deny", "map"]
    mapping: CompiledMapping | None = None


@dataclass(frozen=True, slots=True)
class MethodTable:
    rules: Mapping[str, MethodRule]

    def get(self, method: str) -> MethodRule | None:
        return self.rules.get(method)

    @classmethod
    def compile(cls, entries: Mapping[str, Any]) -> MethodTable:
        """The table of ``entries``; :class:`MappingError` (with the entry's place) for an
        entry that cannot be used."""
        if not isinstance(entries, Mapping):
            raise MappingError("methods: must be an object of method names", field="methods")
        env = None
        rules: dict[str, MethodRule] = {}
        for method, entry in entries.items():
            where = f"methods[{method!r}]"
            if not isinstance(method, str) or not method:
                raise MappingError(f"{where}: a method name is a non-empty string", field=where)
            if method in _FIXED or method.startswith("notifications/"):
                raise MappingError(f"{where}: {method} cannot be configured (tools/call is "
                                   "decided by the tools' mappings; ping and notifications "
                                   "always pass)", field=where)
            if entry in ("allow", "deny"):
                rules[method] = MethodRule(entry)
                continue
            if not isinstance(entry, dict):
                raise MappingError(f'{where}: must be "allow", "deny" or a mapping envelope '
                                   '({"evaluation": ...} or {"evaluations": ...})', field=where)
            env = env or new_cel_env()
            mapping = compile_binding_mapping(method, {BINDING_MAPPING_KEY: entry}, where, env)
            rules[method] = MethodRule("map", mapping)
        return cls(MappingProxyType(rules))
