"""The attribute and context types a Cedar schema declares, resolved for fast lookup.

Reads the Cedar JSON schema format (https://docs.cedarpolicy.com/schema/json-schema.html), or
Cedar schema syntax through :func:`pdp.policies.schema_syntax.schema_to_json`, and resolves
every type name once, following Cedar's name resolution: a name written without a namespace
inside namespace ``N`` means the common type ``N::name``, else the entity type ``N::name``,
else the common type or entity type ``name`` of the empty namespace, else the builtin
(``String``, ``Long``, ``Bool``, ``ipaddr``, ``decimal``, ``datetime``, ``duration``, also
reachable as ``__cedar::name``). A qualified name is looked up as written.

Everything is immutable and every lookup is a dictionary access, so a :class:`SchemaTypes`
can be shared by concurrent requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, NoReturn, TypeAlias

from pdp.errors import PolicyDiagnostic, PolicyLoadError

__all__ = ["AttrKind", "AttrType", "Attribute", "RecordType", "SchemaTypes"]

AttrKind: TypeAlias = Literal["string", "long", "bool", "set", "record", "entity", "extension"]
_EXTENSIONS = ("ipaddr", "decimal", "datetime", "duration")


@dataclass(frozen=True, slots=True)
class AttrType:
    """One node of a type tree.

    ``name`` is the fully qualified entity type of an ``entity`` and the extension
    (``ipaddr``, ``decimal``, ``datetime`` or ``duration``) of an ``extension``; ``element``
    is the element type of a ``set``; ``attributes`` are the attributes of a ``record``.
    """

    kind: AttrKind
    name: str | None = None
    element: AttrType | None = None
    attributes: Mapping[str, Attribute] | None = field(default=None, hash=False)


@dataclass(frozen=True, slots=True)
class Attribute:
    """An attribute of a record or an entity: its type and whether it must be present."""

    type: AttrType
    required: bool = True


@dataclass(frozen=True, slots=True)
class RecordType:
    """The attributes of an entity type or of an action's context."""

    attributes: Mapping[str, Attribute] = field(hash=False)


_BUILTINS: Mapping[str, AttrType] = MappingProxyType({
    "String": AttrType("string"), "Long": AttrType("long"), "Bool": AttrType("bool"),
    **{name: AttrType("extension", name=name) for name in _EXTENSIONS},
})
_JSON_PRIMITIVES: Mapping[str, AttrType] = MappingProxyType(
    {"String": _BUILTINS["String"], "Long": _BUILTINS["Long"], "Boolean": _BUILTINS["Bool"]})
_EMPTY_RECORD = RecordType(MappingProxyType({}))
_MAX_DEPTH = 100  # far more than Cedar's JSON reader accepts, far less than Python's stack


@dataclass(frozen=True, slots=True)
class SchemaTypes:
    """Entity attribute types, action context types and action parents of one schema.

    Actions are named by their id (the AuthZEN action name). An id declared in more than one
    namespace is looked up in ``namespace`` when given; without it, the declaration in the
    empty namespace wins, else the one in the namespace that sorts first.
    """

    _entities: Mapping[str, RecordType] = field(hash=False)
    _actions: Mapping[str | None, _Actions] = field(hash=False)  # None: of any namespace
    _trusted: frozenset[str] = frozenset()  # "Type.attr" of attributes annotated @trusted

    @classmethod
    def from_text(cls, text: str, filename: str = "<schema>") -> SchemaTypes:
        """From a schema in Cedar schema syntax (a ``.cedarschema`` file)."""
        from pdp.policies.schema_syntax import schema_to_json

        return cls.from_json(schema_to_json(text, filename), filename)

    @classmethod
    def from_json(cls, schema: Mapping[str, Any], filename: str = "<schema>") -> SchemaTypes:
        """From a schema in the Cedar JSON schema format (a ``.cedarschema.json`` file)."""
        return _Resolver(schema, filename).build()

    def entity_attributes(self, entity_type: str) -> Mapping[str, Attribute] | None:
        """Attributes of ``entity_type`` (``NS::User`` if namespaced); None if undeclared."""
        shape = self._entities.get(entity_type)
        return None if shape is None else shape.attributes

    def context_type(self, action_name: str, namespace: str | None = None) -> RecordType | None:
        """The context of action ``action_name``; None if no such action is declared. An
        action declared without a context has an empty one."""
        return self._actions.get(namespace, _NO_ACTIONS).contexts.get(action_name)

    def applies_to(self, action_name: str, namespace: str | None = None,
                   ) -> tuple[frozenset[str], frozenset[str]] | None:
        """The principal and resource types (fully qualified) action ``action_name`` applies
        to; None if it is undeclared or declared without ``appliesTo``."""
        return self._actions.get(namespace, _NO_ACTIONS).applies.get(action_name)

    def action_parents(self, namespace: str | None = None) -> Mapping[str, tuple[str, ...]]:
        """Each action's parent actions of the same action type (``NS::Action``), by id."""
        return self._actions.get(namespace, _NO_ACTIONS).parents

    def action_names(self, namespace: str | None = None) -> tuple[str, ...]:
        """The declared actions (of ``namespace`` if given), sorted."""
        return self._actions.get(namespace, _NO_ACTIONS).names

    def trusted_attributes(self) -> frozenset[str]:
        """``Type.attr`` (type fully qualified) of every entity attribute annotated
        ``@trusted``: request properties may set it on a stored entity."""
        return self._trusted

    def entity_type_names(self) -> tuple[str, ...]:
        """Every declared entity type, fully qualified, sorted."""
        return tuple(sorted(self._entities))


@dataclass(frozen=True, slots=True)
class _Actions:
    """The actions of one namespace (or of all of them), each lookup precomputed."""

    contexts: Mapping[str, RecordType] = field(hash=False)
    parents: Mapping[str, tuple[str, ...]] = field(hash=False)
    names: tuple[str, ...]
    applies: Mapping[str, tuple[frozenset[str], frozenset[str]]] = field(hash=False)

    @classmethod
    def of(cls, actions: Mapping[str, _Action]) -> _Actions:
        return cls(MappingProxyType({name: a[0] for name, a in actions.items()}),
                   MappingProxyType({name: a[1] for name, a in actions.items()}),
                   tuple(sorted(actions)),
                   MappingProxyType({name: a[2] for name, a in actions.items()
                                     if a[2] is not None}))


# context, parents, (principal types, resource types) or None without appliesTo
_Action: TypeAlias = tuple[RecordType, tuple[str, ...],
                           tuple[frozenset[str], frozenset[str]] | None]


_NO_ACTIONS = _Actions.of({})


class _Resolver:
    """Resolves the names of one JSON schema, failing with a :class:`PolicyLoadError`."""

    def __init__(self, schema: Mapping[str, Any], filename: str) -> None:
        self.filename = filename
        if not isinstance(schema, Mapping):
            self._fail("a schema must be a JSON object of namespaces")
        self.namespaces: dict[str, Mapping[str, Any]] = {
            ns: self._object(body, f"namespace `{ns}`") for ns, body in schema.items()}
        self.common: dict[str, tuple[str, Any]] = {}
        self.entities: set[str] = set()
        for ns, body in self.namespaces.items():
            common_types = self._object(body.get("commonTypes", {}), "commonTypes")
            for name, definition in common_types.items():
                self.common[_qualify(ns, name)] = (ns, definition)
            for name in self._object(body.get("entityTypes", {}), "entityTypes"):
                self.entities.add(_qualify(ns, name))
        self.resolved: dict[str, AttrType] = {}
        self.resolving: list[str] = []
        self.depth = 0

    def _fail(self, message: str) -> NoReturn:
        raise PolicyLoadError([PolicyDiagnostic(file=self.filename, message=message)])

    def _object(self, value: Any, what: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            self._fail(f"{what} must be a JSON object")
        return value

    def build(self) -> SchemaTypes:
        entities: dict[str, RecordType] = {}
        actions: dict[str, dict[str, _Action]] = {}
        trusted: set[str] = set()
        for ns, body in self.namespaces.items():
            for name, entity in self._object(body.get("entityTypes", {}), "entityTypes").items():
                shape = self._object(entity, f"entity type `{name}`").get("shape")
                entities[_qualify(ns, name)] = self._record(shape, ns, f"shape of `{name}`")
                attributes = shape.get("attributes") if isinstance(shape, Mapping) else None
                if isinstance(attributes, Mapping):
                    trusted.update(
                        f"{_qualify(ns, name)}.{attr}" for attr, raw in attributes.items()
                        if isinstance(raw, Mapping) and isinstance(raw.get("annotations"), Mapping)
                        and "trusted" in raw["annotations"])
            declared = actions.setdefault(ns, {})
            for name, action in self._object(body.get("actions", {}), "actions").items():
                action = self._object(action, f"action `{name}`")
                applies = self._object(action.get("appliesTo") or {}, f"appliesTo of `{name}`")
                context = self._record(applies.get("context"), ns, f"context of `{name}`")
                types = None if action.get("appliesTo") is None else (
                    self._entity_types(applies.get("principalTypes"), ns),
                    self._entity_types(applies.get("resourceTypes"), ns))
                declared[name] = (context, self._parents(action.get("memberOf"), ns), types)
        merged: dict[str, _Action] = {}
        for ns in sorted(actions):
            for name, action in actions[ns].items():
                merged.setdefault(name, action)
        views: dict[str | None, _Actions] = {ns: _Actions.of(a) for ns, a in actions.items()}
        views[None] = _Actions.of(merged)
        return SchemaTypes(MappingProxyType(entities), MappingProxyType(views), frozenset(trusted))

    def _entity_types(self, names: Any, ns: str) -> frozenset[str]:
        if names is None:
            return frozenset()
        if not isinstance(names, list):
            self._fail("principalTypes and resourceTypes must be JSON arrays")
        out: set[str] = set()
        for name in names:
            if not isinstance(name, str):
                self._fail(f"invalid entity type name {name!r}")
            qualified = _qualify(ns, name) if "::" not in name else name
            out.add(qualified if qualified in self.entities else name)
        return frozenset(out)

    def _parents(self, member_of: Any, ns: str) -> tuple[str, ...]:
        if member_of is None:
            return ()
        if not isinstance(member_of, list):
            self._fail("memberOf must be a JSON array")
        same_type = (None, "Action", _qualify(ns, "Action"))
        return tuple(str(ref["id"]) for ref in member_of if isinstance(ref, Mapping)
                     and isinstance(ref.get("id"), str) and ref.get("type") in same_type)

    def _record(self, raw: Any, ns: str, what: str) -> RecordType:
        if raw is None:
            return _EMPTY_RECORD
        resolved = self._type(raw, ns)
        if resolved.attributes is None:
            self._fail(f"the {what} must be a record type")
        return RecordType(resolved.attributes)

    def _type(self, raw: Any, ns: str) -> AttrType:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            self._fail(f"types are nested more than {_MAX_DEPTH} levels deep")
        try:
            return self._resolve(raw, ns)
        finally:
            self.depth -= 1

    def _resolve(self, raw: Any, ns: str) -> AttrType:
        raw = self._object(raw, "a type")
        kind = raw.get("type")
        if kind in _JSON_PRIMITIVES:
            return _JSON_PRIMITIVES[kind]
        if kind == "Set":
            return AttrType("set", element=self._type(raw.get("element"), ns))
        if kind == "Record":
            attributes: dict[str, Attribute] = {}
            for name, attribute in self._object(raw.get("attributes", {}), "attributes").items():
                attributes[name] = Attribute(
                    self._type(attribute, ns), attribute.get("required", True) is not False)
            return AttrType("record", attributes=MappingProxyType(attributes))
        if kind == "Entity":
            return self._name(raw.get("name"), ns, common=False, builtin=False)
        if kind == "Extension":
            name = raw.get("name")
            if name not in _EXTENSIONS:
                self._fail(f"unknown extension type `{name}`")
            return _BUILTINS[name]
        if kind == "EntityOrCommon":
            return self._name(raw.get("name"), ns, common=True, builtin=True)
        if isinstance(kind, str):
            return self._name(kind, ns, common=True, builtin=True, entity=False)
        self._fail(f"invalid type {dict(raw)!r}")

    def _name(self, name: Any, ns: str, *, common: bool, builtin: bool,
              entity: bool = True) -> AttrType:
        if not isinstance(name, str) or not name:
            self._fail(f"invalid type name {name!r}")
        candidates = [name] if "::" in name else [_qualify(ns, name), name] if ns else [name]
        for candidate in candidates:
            if common and candidate in self.common:
                return self._common(candidate)
            if entity and candidate in self.entities:
                return AttrType("entity", name=candidate)
        bare = name.removeprefix("__cedar::")
        if builtin and bare in _BUILTINS:
            return _BUILTINS[bare]
        self._fail(f"failed to resolve type `{name}`")

    def _common(self, name: str) -> AttrType:
        if name in self.resolved:
            return self.resolved[name]
        if name in self.resolving:
            self._fail(f"common type `{name}` is defined in terms of itself")
        self.resolving.append(name)
        ns, definition = self.common[name]
        self.resolved[name] = self._type(definition, ns)
        self.resolving.pop()
        return self.resolved[name]


def _qualify(namespace: str, name: str) -> str:
    return f"{namespace}::{name}" if namespace else name
