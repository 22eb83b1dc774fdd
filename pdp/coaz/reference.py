"""The reference implementation's tool format (alexolivier/authzen-coaz): ``"coaz": true`` on
the tool and ``inputSchema["x-authzen-mapping"]`` without an envelope — a third input form,
normalised to the same :class:`~pdp.coaz.compiled.CompiledMapping` as the two dialects.

The mapping is ``{"subject": {...}, "context": {...}?, "evaluations": [{"action": {...}?,
"resource": {...}}, ...]}``. Every string in it is a CEL expression over ``params`` (the
JSON-RPC ``params``: ``params.name``, ``params.arguments``) and ``token`` (the validated
claims); literals are quoted CEL strings (``"'customer'"``); other JSON values are literals.
An expression that selects a key that is not there has no value: its member is omitted (as the
reference implementation does); any other evaluation error is a mapping error. An entry
without ``action`` gets ``{"name": <tool>}``.

The requests are the ones the reference implementation sends: one entry gives an
``/access/v1/evaluation`` body ``{subject, action, resource, context}`` (``context`` ``{}`` when
the mapping has none); several give an ``/access/v1/evaluations`` body ``{subject, context?,
evaluations: [{action, resource}]}``. Subject anchoring is the binding's (a ``subject.id`` that
is not the token's identity claim is logged), and denials use the binding's deny code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cel_expr_python import cel

from pdp.coaz.binding import (
    _CEL_FAILURES,
    _PLAIN,
    BINDING_MAPPING_KEY,
    _detail,
    _has_nul,
    _to_json,
)
from pdp.coaz.compiled import CompiledMapping
from pdp.coaz.template import MISSING, Arr, Lit, Node, Obj, Ref, TemplateCompiler, at
from pdp.errors import MappingError

__all__ = ["compile_reference_mapping"]

_TOP = ("subject", "context", "evaluations")
_ENTRY = ("action", "resource")
_ERROR = cel.Type.ERROR


@dataclass(frozen=True, slots=True)
class _Expression:
    source: str
    location: str
    program: cel.Expression


@dataclass(frozen=True, slots=True)
class _Resolver:
    expressions: tuple[_Expression, ...]

    def __call__(self, params: Mapping[str, Any], claims: dict[str, Any]) -> list[Any]:
        data = {"params": params, "token": claims}
        if _has_nul(data):
            raise MappingError("a string in the call or the token contains a NUL character, "
                               "which the CEL runtime would truncate")
        out: list[Any] = []
        for expression in self.expressions:
            try:
                result = expression.program.eval(data=data)
                if result.type() == _ERROR:
                    failure = str(result.value())
                    if failure.startswith("NOT_FOUND"):
                        out.append(MISSING)
                        continue
                    raise MappingError(f"{expression.location}: {expression.source!r} failed: "
                                       f"{_detail(failure)}", field=expression.location)
                value = result.plain_value()
            except _CEL_FAILURES as error:
                raise MappingError(f"{expression.location}: {expression.source!r} failed: "
                                   f"{_detail(str(error))}", field=expression.location) from None
            out.append(value if type(value) in _PLAIN else _to_json(value, expression.location))
        return out


class _Compiler(TemplateCompiler):
    def __init__(self, env: cel.Env) -> None:
        self.env = env
        self.expressions: list[_Expression] = []

    def string(self, text: str, where: str) -> Node:
        try:
            program = self.env.compile(text)
        except RuntimeError as error:
            raise MappingError(f"{where}: invalid CEL expression {text!r}: "
                               f"{_detail(str(error))}", field=where) from None
        self.expressions.append(_Expression(text, where, program))
        return Ref(len(self.expressions) - 1, where)


def _object(compiler: _Compiler, value: Any, where: str) -> Node:
    if not isinstance(value, dict):
        raise MappingError(f"{where}: must be an object", field=where)
    return compiler.node(value, where)


def compile_reference_mapping(tool_name: str, input_schema: Mapping[str, Any], location: str,
                              env: cel.Env) -> CompiledMapping:
    """Compile a reference-implementation ``x-authzen-mapping``; ``location`` is the place of
    the tool's ``inputSchema``."""
    here = at(location, BINDING_MAPPING_KEY)
    mapping = input_schema.get(BINDING_MAPPING_KEY)
    if not isinstance(mapping, dict):
        raise MappingError(f"{here}: must be an object", field=here)
    for key in mapping:
        if key not in _TOP:
            raise MappingError(f"{at(here, key)}: unknown member (expected subject, context, "
                               "evaluations)", field=at(here, key))
    for key in ("subject", "evaluations"):
        if key not in mapping:
            raise MappingError(f"{at(here, key)}: required", field=at(here, key))
    entries = mapping["evaluations"]
    entries_at = at(here, "evaluations")
    if not isinstance(entries, list) or not entries:
        raise MappingError(f"{entries_at}: must be a non-empty array", field=entries_at)
    compiler = _Compiler(env)
    subject = _object(compiler, mapping["subject"], at(here, "subject"))
    context = (_object(compiler, mapping["context"], at(here, "context"))
               if "context" in mapping else None)
    default_action = Obj((("name", Lit(tool_name)),))
    items: list[tuple[Node, Node]] = []
    for i, entry in enumerate(entries):
        spot = at(entries_at, i)
        if not isinstance(entry, dict):
            raise MappingError(f"{spot}: must be an object", field=spot)
        for key in entry:
            if key not in _ENTRY:
                raise MappingError(f"{at(spot, key)}: unknown member (expected action, "
                                   "resource)", field=at(spot, key))
        if "resource" not in entry:
            raise MappingError(f"{at(spot, 'resource')}: required", field=at(spot, "resource"))
        action = (_object(compiler, entry["action"], at(spot, "action"))
                  if "action" in entry else default_action)
        items.append((action, _object(compiler, entry["resource"], at(spot, "resource"))))
    resolve = _Resolver(tuple(compiler.expressions))
    if len(items) == 1:
        action, resource = items[0]
        body = Obj((("subject", subject), ("action", action), ("resource", resource),
                    ("context", context if context is not None else Obj(()))))
        return CompiledMapping(tool=tool_name, dialect="binding", envelope="evaluation",
                               body=body, resolve=resolve, location=here)
    members: list[tuple[str, Node]] = [("subject", subject)]
    if context is not None:
        members.append(("context", context))
    members.append(("evaluations", Arr(tuple(
        Obj((("action", action), ("resource", resource))) for action, resource in items))))
    return CompiledMapping(tool=tool_name, dialect="binding", envelope="evaluations",
                           body=Obj(tuple(members)), resolve=resolve, location=here)
