"""Tool definitions from a ``tools/list`` result, compiled into one catalogue (docs/spec/coaz.md,
"Tool definitions"; "Dialect 1" and "Dialect 2": how a tool declares its mapping).

Each tool needs a non-empty string ``name`` (names outside the recommended 1–128 characters of
``[A-Za-z0-9_.-]`` are accepted with a warning) and an ``inputSchema`` that is a valid JSON
Schema (2020-12 unless ``$schema`` says otherwise) with ``type: "object"``. Its mapping is:

* dialect 1 (SEP): ``"coaz": true`` on the tool and ``inputSchema["x-coaz-mapping"]``;
* dialect 2 (binding): ``inputSchema["x-authzen-mapping"]``, no marker;
* the reference implementation's form: ``"coaz": true`` with ``inputSchema["x-authzen-mapping"]``
  holding ``{subject, context?, evaluations: [...]}`` where every string is CEL
  (:mod:`pdp.coaz.reference`);
* neither: the binding's default ``tools/call`` mapping.

A definition that mixes the dialects (both mapping keys; ``coaz: true`` without a mapping;
``x-coaz-mapping`` without ``coaz: true``, which would otherwise silently ignore an
authorisation mapping), a non-boolean ``coaz``, a malformed mapping or an invalid
schema is refused when the list is loaded, with the JSON path of the problem (for example
``tools[2].inputSchema.x-authzen-mapping.evaluation.resource.id``). Only that tool is affected:
calling it is a mapping error. A name defined twice makes both definitions unusable. Tool-call
arguments are validated against ``inputSchema`` before mapping; a violation is a mapping error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from cel_expr_python import cel

from pdp.coaz.arguments import ArgumentValidator
from pdp.coaz.binding import BINDING_MAPPING_KEY, compile_binding_mapping, new_cel_env
from pdp.coaz.compiled import CompiledMapping
from pdp.coaz.reference import compile_reference_mapping
from pdp.coaz.sep import SEP_MAPPING_KEY, compile_sep_mapping
from pdp.coaz.template import at
from pdp.errors import MappingError

__all__ = ["ToolEntry", "ToolCatalog"]

log = logging.getLogger(__name__)

_RECOMMENDED_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}\Z")


@dataclass(frozen=True, slots=True)
class ToolEntry:
    """One tool of the catalogue. ``error`` is set when its definition was refused; otherwise
    ``mapping`` is its compiled mapping (``None``: the default ``tools/call`` mapping)."""

    name: str
    location: str
    dialect: Literal["sep", "binding"] | None = None
    mapping: CompiledMapping | None = None
    arguments: ArgumentValidator | None = None
    error: MappingError | None = None


@dataclass(frozen=True, slots=True)
class ToolCatalog:
    """Every tool of one server, compiled. Build it with :meth:`from_tools_list`."""

    tools: Mapping[str, ToolEntry] = field(default_factory=lambda: MappingProxyType({}))
    problems: tuple[MappingError, ...] = ()
    warnings: tuple[str, ...] = ()
    server_id: str | None = None

    def get(self, name: str) -> ToolEntry | None:
        return self.tools.get(name)

    @property
    def errors(self) -> Mapping[str, MappingError]:
        """Tools whose definitions were refused, by name."""
        return {name: e.error for name, e in self.tools.items() if e.error is not None}

    @classmethod
    def from_tools_list(cls, tools: list[dict[str, Any]], *,
                        server_id: str | None = None) -> ToolCatalog:
        """Compile the ``tools`` array of a ``tools/list`` result. Only a ``tools`` value that
        is not an array raises; every other problem is recorded per tool (see ``problems``)."""
        if not isinstance(tools, list):
            raise MappingError("tools: must be an array of tool definitions", field="tools")
        loader = _Loader(server_id)
        entries: dict[str, ToolEntry] = {}
        places: dict[str, list[str]] = {}
        for i, tool in enumerate(tools):
            where = f"tools[{i}]"
            if not isinstance(tool, dict):
                loader.problem(MappingError(f"{where}: must be an object", field=where))
                continue
            name = tool.get("name")
            if not isinstance(name, str) or not name:
                spot = at(where, "name")
                loader.problem(MappingError(f"{spot}: required, a non-empty string", field=spot))
                continue
            places.setdefault(name, []).append(where)
            if len(places[name]) > 1:
                error = MappingError(f"{where}: tool {name!r} is defined more than once "
                                     f"({', '.join(places[name])})", field=where)
                loader.problem(error)
                entries[name] = ToolEntry(name, places[name][0], error=error)
                continue
            entries[name] = loader.load(name, tool, where)
        return cls(MappingProxyType(entries), tuple(loader.problems), tuple(loader.warnings),
                   server_id)


class _Loader:
    def __init__(self, server_id: str | None) -> None:
        self.server_id = server_id
        self.problems: list[MappingError] = []
        self.warnings: list[str] = []
        self._env: cel.Env | None = None

    def env(self) -> cel.Env:
        if self._env is None:
            self._env = new_cel_env()
        return self._env

    def warn(self, message: str) -> None:
        log.warning("server %s: %s", self.server_id or "-", message)
        self.warnings.append(message)

    def problem(self, error: MappingError) -> None:
        log.warning("server %s: tool definition refused: %s", self.server_id or "-", error.message)
        self.problems.append(error)

    def load(self, name: str, tool: dict[str, Any], where: str) -> ToolEntry:
        if not _RECOMMENDED_NAME.match(name):
            self.warn(f"{at(where, 'name')}: {name!r} is not 1-128 characters of [A-Za-z0-9_.-]")
        try:
            return self._load(name, tool, where)
        except MappingError as error:
            self.problem(error)
            return ToolEntry(name, where, error=error)

    def _load(self, name: str, tool: dict[str, Any], where: str) -> ToolEntry:
        schema_at = at(where, "inputSchema")
        schema = tool.get("inputSchema")
        if not isinstance(schema, dict):
            raise MappingError(f"{schema_at}: required, a JSON Schema object", field=schema_at)
        if schema.get("type") != "object":
            spot = at(schema_at, "type")
            raise MappingError(f'{spot}: must be "object"', field=spot)
        arguments = ArgumentValidator.compile(schema, schema_at)

        marker = tool.get("coaz", False)
        if not isinstance(marker, bool):
            spot = at(where, "coaz")
            raise MappingError(f"{spot}: must be a boolean", field=spot)
        has_sep, has_binding = SEP_MAPPING_KEY in schema, BINDING_MAPPING_KEY in schema
        if has_sep and has_binding:
            raise MappingError(f"{schema_at}: has both {SEP_MAPPING_KEY} and "
                               f"{BINDING_MAPPING_KEY}; a tool uses one dialect", field=schema_at)
        if marker and has_binding:  # the reference implementation's form
            mapping = compile_reference_mapping(name, schema, schema_at, self.env())
            return ToolEntry(name, where, "binding", mapping, arguments)
        if marker and not has_sep:
            spot = at(schema_at, SEP_MAPPING_KEY)
            raise MappingError(f"{spot}: required when the tool has coaz: true", field=spot)
        if has_sep and not marker:
            spot = at(where, "coaz")
            raise MappingError(f"{spot}: must be true for a tool with {SEP_MAPPING_KEY}",
                               field=spot)
        if has_sep:
            mapping = compile_sep_mapping(name, schema, schema_at, self.warn)
            return ToolEntry(name, where, "sep", mapping, arguments)
        if has_binding:
            mapping = compile_binding_mapping(name, schema, schema_at, self.env())
            return ToolEntry(name, where, "binding", mapping, arguments)
        return ToolEntry(name, where, None, None, arguments)
