"""Dialect 2: the OpenID AuthZEN WG "COAZ-MCP binding" (docs/spec/coaz.md, "Dialect 2").

The mapping is ``inputSchema["x-authzen-mapping"]``: an envelope with exactly one member,

* ``evaluation``: a template for one ``/access/v1/evaluation`` body (``subject``, ``action``,
  ``resource``, ``context``), or
* ``evaluations``: a template for one ``/access/v1/evaluations`` body: top-level defaults
  (``subject``, ``action``, ``resource``, ``context``, ``options``) and ``evaluations``, a list
  of entry templates (``action``, ``resource``, ``context``; never ``subject``) or one
  expression that yields that list. This is the only way one call becomes several decisions:
  array arguments are never fanned out implicitly.

A string value starting with ``$`` is a CEL expression over ``params`` (the JSON-RPC
``params``: ``params.name``, ``params.arguments``, which is ``{}`` when the call has none) and
``token`` (the validated claims as issued: ``token.aud`` may be a list, only the default
mappings resolve it to one string);
``$$`` stands for a literal leading ``$``. Every other value is a literal; objects and arrays
are walked. Expressions are compiled once, when the tool list is loaded, with Google's CEL
(cel-expr-python) and its optional-types extension, then joined into one CEL program per mapping
so that a call costs one evaluation. An expression whose static type is optional
(``$token.?client_id``) drops its object member (or array element) when it has no value; plain
selection of a missing key, any other evaluation error, or a result that is not JSON (bytes,
timestamps, durations, non-finite numbers, maps with non-string keys) is a mapping error, as is
a body left without ``subject``, ``action`` or ``resource`` (subject anchoring runs first, see
:mod:`pdp.coaz.compiled`). The whole ``params`` and claims are converted to CEL for each call:
an integer outside the 64-bit range anywhere in them is therefore a mapping error, and so is a
string containing a NUL character (cel-expr-python 0.1.3 silently truncates such strings when
converting them, which would let ``doc-1<NUL>-other`` be authorised as ``doc-1``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_optional

from pdp.coaz.compiled import CompiledMapping
from pdp.coaz.template import (
    MISSING,
    Arr,
    Lit,
    Node,
    Obj,
    Ref,
    TemplateCompiler,
    at,
    check_members,
)
from pdp.errors import MappingError

__all__ = ["BINDING_MAPPING_KEY", "CelExpression", "CelResolver", "new_cel_env",
           "compile_binding_mapping"]

BINDING_MAPPING_KEY = "x-authzen-mapping"

_EVALUATION_MEMBERS = ("subject", "action", "resource", "context")
_EVALUATIONS_MEMBERS = ("subject", "action", "resource", "context", "evaluations", "options")
_ENTRY_MEMBERS = ("action", "resource", "context")
_MAX_DETAIL = 300
_ERROR = cel.Type.ERROR
# What the CEL runtime raises when it cannot convert a value between Python and CEL.
_CEL_FAILURES = (TypeError, ValueError, RuntimeError, OverflowError)
_PLAIN = frozenset({str, int, bool, type(None)})
_SCALARS = frozenset({int, float, bool, type(None)})


def new_cel_env() -> cel.Env:
    """A CEL environment with ``params`` and ``token`` (maps from string to any value) and the
    optional-types extension."""
    json_map = cel.Type.Map(cel.Type.STRING, cel.Type.DYN)
    return cel.NewEnv(variables={"params": json_map, "token": json_map},
                      extensions=[ext_optional.ExtOptional()])


def _detail(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


@dataclass(frozen=True, slots=True)
class CelExpression:
    """One compiled expression. When ``optional``, ``program`` yields ``[]`` (no value) or
    ``[value]``."""

    source: str
    location: str
    optional: bool
    program: cel.Expression

    def wrapped(self) -> str:
        # Newlines keep a trailing ``//`` comment from swallowing the closing parenthesis.
        inner = f"(\n{self.source}\n)"
        return f"[?{inner}]" if self.optional else inner


def _compile_one(env: cel.Env, source: str, where: str) -> CelExpression:
    try:
        checked = env.compile(source)
    except RuntimeError as error:
        raise MappingError(f"{where}: invalid CEL expression {source!r}: {_detail(str(error))}",
                           field=where) from None
    optional = checked.return_type().name().startswith("optional_type")
    if not optional:
        return CelExpression(source, where, False, checked)
    probe = CelExpression(source, where, True, checked)
    try:
        program = env.compile(probe.wrapped())
    except RuntimeError as error:
        raise MappingError(f"{where}: invalid CEL expression {source!r}: {_detail(str(error))}",
                           field=where) from None
    return CelExpression(source, where, True, program)


def _to_json(value: Any, where: str) -> Any:
    """``value`` (a fresh result of the CEL runtime) if it is JSON; else a mapping error."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind in _PLAIN:
            continue
        if kind is float:
            if not math.isfinite(item):
                raise MappingError(f"{where}: the expression yields a non-finite number",
                                   field=where)
        elif kind is list:
            stack.extend(item)
        elif kind is dict:
            for key, member in item.items():
                if type(key) is not str:
                    raise MappingError(f"{where}: the expression yields a map with a "
                                       "non-string key", field=where)
                stack.append(member)
        else:
            raise MappingError(f"{where}: the expression yields a {kind.__name__}, "
                               "which is not a JSON value", field=where)
    return value


def _has_nul(value: Any) -> bool:
    """Whether a string (value or member name) anywhere in ``value`` contains NUL."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            for key, member in item.items():
                if type(key) is str and "\x00" in key:
                    return True
                if type(member) is str:
                    if "\x00" in member:
                        return True
                elif type(member) not in _SCALARS:
                    stack.append(member)
        elif kind is list:
            for member in item:
                if type(member) is str:
                    if "\x00" in member:
                        return True
                elif type(member) not in _SCALARS:
                    stack.append(member)
        elif kind is str:
            if "\x00" in item:
                return True
        elif kind not in _SCALARS and isinstance(item, Mapping):
            stack.append(dict(item))
    return False


@dataclass(frozen=True, slots=True)
class CelResolver:
    """Evaluates all expressions of one mapping with a single CEL program."""

    expressions: tuple[CelExpression, ...]
    program: cel.Expression | None

    def __call__(self, params: Mapping[str, Any], claims: dict[str, Any]) -> list[Any]:
        if self.program is None:
            return []
        data = {"params": params, "token": claims}
        if _has_nul(data):
            raise MappingError("a string in the call or the token contains a NUL character, "
                               "which the CEL runtime would truncate")
        try:
            values = self.program.eval(data=data).plain_value()
        except _CEL_FAILURES as error:
            raise self._locate(data, str(error)) from None
        if type(values) is not list:  # the program is a list literal: anything else is an error
            raise self._locate(data, str(values))
        out: list[Any] = []
        for expression, value in zip(self.expressions, values, strict=True):
            if expression.optional:
                if not value:
                    out.append(MISSING)
                    continue
                value = value[0]
            out.append(value if type(value) in _PLAIN else _to_json(value, expression.location))
        return out

    def _locate(self, data: Mapping[str, Any], fallback: str) -> MappingError:
        """The error of the first expression that fails on its own."""
        for expression in self.expressions:
            try:
                result = expression.program.eval(data=data)
                failure = str(result.value()) if result.type() == _ERROR else None
                if failure is None:
                    result.plain_value()
            except _CEL_FAILURES as error:
                failure = str(error)
            if failure is not None:
                return MappingError(f"{expression.location}: {expression.source!r} failed: "
                                    f"{_detail(failure)}", field=expression.location)
        return MappingError(f"the mapping's expressions failed: {_detail(fallback)}")


class _Compiler(TemplateCompiler):
    def __init__(self, env: cel.Env) -> None:
        self.env = env
        self.expressions: list[CelExpression] = []

    def string(self, text: str, where: str) -> Node:
        if text.startswith("$$"):
            return Lit(text[1:])
        if text.startswith("$"):
            self.expressions.append(_compile_one(self.env, text[1:], where))
            return Ref(len(self.expressions) - 1, where)
        return Lit(text)

    def resolver(self, where: str) -> CelResolver:
        if not self.expressions:
            return CelResolver((), None)
        joined = "[\n" + ",\n".join(e.wrapped() for e in self.expressions) + "\n]"
        try:
            program = self.env.compile(joined)
        except RuntimeError as error:
            raise MappingError(f"{where}: the expressions cannot be combined: "
                               f"{_detail(str(error))}", field=where) from None
        return CelResolver(tuple(self.expressions), program)


def _template(compiler: _Compiler, value: Any, where: str, members: tuple[str, ...],
              *, required: tuple[str, ...]) -> Obj:
    if isinstance(value, dict) and "subject" in value and "subject" not in members:
        raise MappingError(f"{at(where, 'subject')}: an entry must not carry its own subject "
                           "(it comes from the token)", field=at(where, "subject"))
    check_members(value, where, members, required)
    out: list[tuple[str, Node]] = []
    for key in members:
        if key in value:
            node = compiler.node(value[key], at(where, key))
            _check_static(key, node, at(where, key))
            out.append((key, node))
    return Obj(tuple(out))


def _check_static(key: str, node: Node, where: str) -> None:
    """Refuse at load what would fail on every call."""
    if isinstance(node, Ref):
        return
    expect_object = key in ("subject", "action", "resource", "context", "options")
    if expect_object and not isinstance(node, Obj):
        raise MappingError(f"{where}: must be an object or an expression", field=where)
    required = {"resource": ("type", "id"), "action": ("name",)}.get(key, ())
    assert isinstance(node, Obj) or not required
    for member in required:
        if isinstance(node, Obj) and node.get(member) is None:
            raise MappingError(f"{at(where, member)}: required", field=at(where, member))


def compile_binding_mapping(tool_name: str, input_schema: Mapping[str, Any], location: str,
                            env: cel.Env) -> CompiledMapping:
    """Compile ``input_schema["x-authzen-mapping"]``; ``location`` is the place of the tool's
    ``inputSchema`` in the tool list. Raises :class:`MappingError` with the path of the first
    problem."""
    here = at(location, BINDING_MAPPING_KEY)
    mapping = input_schema.get(BINDING_MAPPING_KEY)
    if not isinstance(mapping, dict) or len(mapping) != 1 \
            or next(iter(mapping)) not in ("evaluation", "evaluations"):
        raise MappingError(f"{here}: must be an object with exactly one member, 'evaluation' "
                           "or 'evaluations'", field=here)
    compiler = _Compiler(env)
    if "evaluation" in mapping:
        where = at(here, "evaluation")
        body = _template(compiler, mapping["evaluation"], where, _EVALUATION_MEMBERS,
                         required=("action", "resource"))
        return CompiledMapping(tool=tool_name, dialect="binding", envelope="evaluation",
                               body=body, resolve=compiler.resolver(here), location=where)

    where = at(here, "evaluations")
    template = mapping["evaluations"]
    if not isinstance(template, dict):
        raise MappingError(f"{where}: must be an object", field=where)
    top = _template(compiler, {k: v for k, v in template.items() if k != "evaluations"},
                    where, _EVALUATIONS_MEMBERS, required=())
    if "evaluations" not in template:
        raise MappingError(f"{at(where, 'evaluations')}: required",
                           field=at(where, "evaluations"))
    entries = template["evaluations"]
    entries_at = at(where, "evaluations")
    entries_node: Node
    if isinstance(entries, list):
        if not entries:
            raise MappingError(f"{entries_at}: must not be empty", field=entries_at)
        items: list[Node] = []
        for i, entry in enumerate(entries):
            spot = at(entries_at, i)
            node = _template(compiler, entry, spot, _ENTRY_MEMBERS, required=())
            for key in ("action", "resource"):
                if node.get(key) is None and top.get(key) is None:
                    raise MappingError(f"{at(spot, key)}: required here or in the top-level "
                                       "defaults", field=at(spot, key))
            items.append(node)
        entries_node = Arr(tuple(items))
    elif isinstance(entries, str) and entries.startswith("$") and not entries.startswith("$$"):
        entries_node = compiler.node(entries, entries_at)
    else:
        raise MappingError(f"{entries_at}: must be an array of entries or an expression "
                           "that yields one", field=entries_at)
    members = [m for m in top.members if m[0] != "options"]
    members.append(("evaluations", entries_node))
    members.extend(m for m in top.members if m[0] == "options")
    body = Obj(tuple(members))
    return CompiledMapping(tool=tool_name, dialect="binding", envelope="evaluations", body=body,
                           resolve=compiler.resolver(here), location=where)
