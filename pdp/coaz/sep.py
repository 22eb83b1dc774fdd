"""Dialect 1: the MCP SEP "COAZ: Parameter-Level Authorization Mapping for AuthZEN"
(docs/spec/coaz.md, "Dialect 1").

A tool opts in with ``"coaz": true``; its mapping is ``inputSchema["x-coaz-mapping"]`` with the
members ``subject``, ``resource`` and ``context`` (required objects) and ``action`` (optional
object; without it the action is ``{"name": <tool name>}``). Strings rooted at ``$properties``
(the call's arguments) or ``$token`` (the validated claims) are JSONPath references; every other
value is a literal, and objects and arrays are walked. At least one value under ``subject`` or
``context`` must come from ``$token``, else the mapping is refused when the tool list is loaded.

This dialect has no subject anchoring: the mapping names the subject itself, and a mapping
that reads ``$token['sub']`` is a mapping error for a token without ``sub`` (client
credentials). ``$token.aud`` is the claim as issued (a string or a list).

References are compiled once, at load, with jsonpath-ng's extended parser. Resolution:

* a reference to an argument that ``inputSchema.required`` does not list (judged by the first
  member name after ``$properties``), selecting nothing, drops its member;
* a reference to a required argument, or any ``$token`` reference, selecting nothing is a
  mapping error;
* a *singular* query (only member names and single indexes, RFC 9535 §2.3.5.1) yields its one
  value; any other query (wildcards, slices, descendants, filters, several names or indexes)
  yields the list of everything it selects, even when that is one value, so policies see a
  stable type. Arrays are never fanned out into several evaluations.

Singular queries are run directly on the compiled name/index chain; the result is the one
jsonpath-ng's ``find`` returns for them. Other queries run through jsonpath-ng.

Where jsonpath-ng 1.16 differs from RFC 9535, and what this module does about it:

* Comparisons in filters follow RFC 9535 (no ``"5" == 5``, ``true`` is not ``1``), as in the
  library.
* Function extensions (``length()``, ``count()``, ``match()``, ``search()``, ``value()``) are
  not supported by the library: such a mapping is refused.
* The library's non-standard syntax is refused: ``where``/``wherenot``, ``|`` and ``&``
  (union/intersection), the regex operator ``=~``, sorting (``[/x]``, ``[\\x]``), arithmetic,
  named operators (`` `len` ``, `` `this` ``, ``sub()``, ``split()``, ``str()``), unquoted words
  as comparison operands, and anything the library flags as deprecated.
* Dot notation in the library does not accept every RFC 9535 member name: the words ``where``,
  ``wherenot``, ``true``, ``false`` and ``null`` and most non-ASCII names must be written in
  bracket notation (``$properties['where']``); the library also accepts ``-`` and ``@`` inside
  dotted names, which RFC 9535 does not.
* Inside a filter, ``$`` would denote the root of the same variable; since that is easy to
  misread (``$token`` is not reachable from a ``$properties`` filter), a filter that refers to
  ``$`` is refused.
* A string that starts with ``$`` followed by a letter, ``_``, ``.``, ``[`` or nothing, but is
  not rooted at ``$properties`` or ``$token``, is refused as an unknown root rather than taken
  as a literal, so that a misspelt root (``$tokn.sub``) cannot become a literal subject. Other
  strings starting with ``$`` (``"$5"``) are literals. The SEP has no escape for a literal
  that looks like a reference.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from jsonpath_ng import jsonpath as jp
from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext import filter as jpf
from jsonpath_ng.ext.parser import parse as jsonpath_parse

from pdp.coaz.compiled import CompiledMapping
from pdp.coaz.template import (
    MISSING,
    Lit,
    Node,
    Obj,
    Ref,
    TemplateCompiler,
    at,
    check_members,
    contains_ref,
)
from pdp.errors import MappingError

__all__ = ["SEP_MAPPING_KEY", "PathRef", "SepResolver", "compile_sep_mapping"]

log = logging.getLogger(__name__)

SEP_MAPPING_KEY = "x-coaz-mapping"

_FIELDS = ("subject", "action", "resource", "context")
_REQUIRED_FIELDS = ("subject", "resource", "context")
_REFERENCE = re.compile(r"\$(properties|token)(?![A-Za-z0-9_])")
_LOOKS_LIKE_REFERENCE = re.compile(r"\$(?:[A-Za-z_.\[]|\Z)")

# Classes a query may be built from; anything else is a library extension.
_CHAIN_NODES: tuple[type, ...] = (jp.Root, jp.Child, jp.Descendants, jp.Fields, jp.Index,
                                   jp.Slice, jp.Wildcard, jpf.Filter)
_FILTER_NODES: tuple[type, ...] = (jp.This, jp.Child, jp.Descendants, jp.Fields, jp.Index,
                                    jp.Slice, jp.Wildcard, jpf.Filter, jpf.Expression,
                                    jpf.And, jpf.Or)
_FILTER_OPERATORS = frozenset({None, "!", "==", "!=", "<", "<=", ">", ">="})

Root = Literal["properties", "token"]


@dataclass(frozen=True, slots=True)
class PathRef:
    """One compiled JSONPath reference."""

    source: str
    root: Root
    location: str
    required: bool
    steps: tuple[str | int, ...] | None
    query: jp.JSONPath | None

    def resolve(self, arguments: dict[str, Any], claims: dict[str, Any]) -> Any:
        data: Any = arguments if self.root == "properties" else claims
        if self.steps is not None:
            for step in self.steps:
                if isinstance(step, str):
                    if isinstance(data, dict) and step in data:
                        data = data[step]
                        continue
                elif isinstance(data, list) and -len(data) <= step < len(data):
                    data = data[step]
                    continue
                return self._nothing()
            return data
        assert self.query is not None
        found = [match.value for match in self.query.find(data)]
        return found if found else self._nothing()

    def _nothing(self) -> Any:
        if self.required:
            what = "token claim" if self.root == "token" else "required argument"
            raise MappingError(f"{self.location}: {self.source!r} selects no {what}",
                               field=self.location)
        return MISSING


@dataclass(frozen=True, slots=True)
class SepResolver:
    """Resolves the references of one SEP mapping for one call."""

    refs: tuple[PathRef, ...]

    def __call__(self, params: Mapping[str, Any], claims: dict[str, Any]) -> list[Any]:
        arguments = params.get("arguments")
        if not isinstance(arguments, dict):
            arguments = {}
        return [ref.resolve(arguments, claims) for ref in self.refs]


def compile_sep_mapping(tool_name: str, input_schema: Mapping[str, Any], location: str,
                        warn: Callable[[str], None] | None = None) -> CompiledMapping:
    """Compile ``input_schema["x-coaz-mapping"]``; ``location`` is the place of the tool's
    ``inputSchema`` in the tool list. Raises :class:`MappingError` with the path of the first
    problem; ``warn`` receives what is accepted but suspicious (default: logged)."""
    here = at(location, SEP_MAPPING_KEY)
    mapping = check_members(input_schema.get(SEP_MAPPING_KEY), here, _FIELDS, _REQUIRED_FIELDS)

    required = input_schema.get("required", [])
    required_args = frozenset(r for r in required if isinstance(r, str)) \
        if isinstance(required, list) else frozenset()
    properties = input_schema.get("properties")
    declared = frozenset(properties) if isinstance(properties, dict) else frozenset()
    compiler = _Compiler(required_args, declared, warn or log.warning)

    members: list[tuple[str, Node]] = []
    for key in _FIELDS:
        if key not in mapping:
            if key == "action":
                members.append(("action", Obj((("name", Lit(tool_name)),))))
            continue
        value = mapping[key]
        if not isinstance(value, dict):
            raise MappingError(f"{at(here, key)}: must be an object", field=at(here, key))
        members.append((key, compiler.node(value, at(here, key))))
    body = Obj(tuple(members))

    token_refs = frozenset(i for i, r in enumerate(compiler.refs) if r.root == "token")
    subject, context = body.get("subject"), body.get("context")
    if not any(n is not None and contains_ref(n, token_refs) for n in (subject, context)):
        raise MappingError(
            f"{here}: at least one value of 'subject' or 'context' must come from $token "
            "(the caller must not choose who it acts for)", field=here)
    _check_required_members(body, here)
    return CompiledMapping(tool=tool_name, dialect="sep", envelope="evaluation", body=body,
                           resolve=SepResolver(tuple(compiler.refs)), location=here)


def _check_required_members(body: Obj, here: str) -> None:
    for field_name, required in (("subject", ("type", "id")), ("resource", ("type", "id")),
                                 ("action", ("name",))):
        node = body.get(field_name)
        if isinstance(node, Obj):
            for member in required:
                if node.get(member) is None:
                    where = at(at(here, field_name), member)
                    raise MappingError(f"{where}: required", field=where)


class _Compiler(TemplateCompiler):
    def __init__(self, required: frozenset[str], declared: frozenset[str],
                 warn: Callable[[str], None]) -> None:
        self.required = required
        self.declared = declared
        self.warn = warn
        self.refs: list[PathRef] = []

    def string(self, text: str, where: str) -> Node:
        match = _REFERENCE.match(text)
        if match is None:
            if _LOOKS_LIKE_REFERENCE.match(text):
                raise MappingError(f"{where}: {text!r} is not rooted at $properties or $token",
                                   field=where)
            return Lit(text)
        root: Root = "properties" if match.group(1) == "properties" else "token"
        query = _parse("$" + text[match.end():], text, where)
        steps = _singular_steps(query)
        first = _first_name(query)
        required = root == "token" or (first is not None and first in self.required)
        if root == "properties" and first is not None and first not in self.declared:
            self.warn(f"{where}: refers to argument {first!r}, which inputSchema.properties "
                      "does not declare")
        ref = PathRef(source=text, root=root, location=where, required=required, steps=steps,
                      query=None if steps is not None else query)
        self.refs.append(ref)
        return Ref(len(self.refs) - 1, where)


def _parse(query: str, text: str, where: str) -> jp.JSONPath:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parsed = jsonpath_parse(query)
        except (JsonPathLexerError, JsonPathParserError, ValueError, TypeError) as error:
            raise MappingError(f"{where}: invalid JSONPath {text!r}: {error}",
                               field=where) from None
    for warning in caught:
        raise MappingError(f"{where}: non-standard JSONPath {text!r}: {warning.message}",
                           field=where)
    _check_nodes(parsed, _CHAIN_NODES, text, where)
    return parsed


def _check_nodes(node: Any, allowed: tuple[type, ...], text: str, where: str) -> None:
    if type(node) not in allowed:
        raise MappingError(f"{where}: unsupported JSONPath syntax in {text!r} "
                           f"({type(node).__name__})", field=where)
    if isinstance(node, jp.Child | jp.Descendants):
        _check_nodes(node.left, allowed, text, where)
        _check_nodes(node.right, allowed, text, where)
    elif isinstance(node, jpf.Filter):
        for expression in node.expressions:
            _check_nodes(expression, _FILTER_NODES, text, where)
    elif isinstance(node, jpf.Expression):
        if node.op not in _FILTER_OPERATORS:
            raise MappingError(f"{where}: unsupported filter operator {node.op!r} in {text!r}",
                               field=where)
        _check_nodes(node.target, _FILTER_NODES, text, where)
        if isinstance(node.value, jp.JSONPath):
            _check_nodes(node.value, _FILTER_NODES, text, where)
    elif isinstance(node, jpf.And | jpf.Or):
        for operand in node.operands:
            _check_nodes(operand, _FILTER_NODES, text, where)


def _chain(query: jp.JSONPath) -> list[jp.JSONPath] | None:
    """The segments after the root, if ``query`` is a plain ``Child`` chain."""
    segments: list[jp.JSONPath] = []
    node = query
    while isinstance(node, jp.Child):
        segments.append(node.right)
        node = node.left
    if not isinstance(node, jp.Root):
        return None
    segments.reverse()
    return segments


def _singular_steps(query: jp.JSONPath) -> tuple[str | int, ...] | None:
    segments = _chain(query)
    if segments is None:
        return None
    steps: list[str | int] = []
    for segment in segments:
        if type(segment) is jp.Fields and len(segment.fields) == 1:
            steps.append(segment.fields[0])
        elif type(segment) is jp.Index and len(segment.indices) == 1:
            steps.append(segment.indices[0])
        else:
            return None
    return tuple(steps)


def _first_name(query: jp.JSONPath) -> str | None:
    """The argument a query starts from: its first segment, when that is one member name."""
    node = query
    while isinstance(node, jp.Child | jp.Descendants):
        if isinstance(node.left, jp.Root):
            first = node.right
            if isinstance(node, jp.Child) and type(first) is jp.Fields \
                    and len(first.fields) == 1 and isinstance(first.fields[0], str):
                return str(first.fields[0])
            return None
        node = node.left
    return None
