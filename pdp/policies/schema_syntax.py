"""Cedar schema syntax (``.cedarschema``) to Cedar's JSON schema format.

Implements the human-readable Cedar schema format of Cedar 4
(https://docs.cedarpolicy.com/schema/human-readable-schema.html, grammar at
https://docs.cedarpolicy.com/schema/human-readable-schema-grammar.html) and produces the JSON
schema format (https://docs.cedarpolicy.com/schema/json-schema.html) the way Cedar's own
translator does: every type written as a name (``Long``, ``User``, ``NS::Addr``,
``__cedar::ipaddr``) becomes ``{"type": "EntityOrCommon", "name": ...}`` and is resolved by
Cedar, a named ``context`` becomes a common-type reference, annotations are kept, and an
action without ``appliesTo`` applies to nothing.

Besides syntax errors, the checks Cedar makes while translating are made here too, with their
position: reserved identifiers and type names, duplicate declarations, namespaces and
annotations, and incomplete ``appliesTo`` clauses. Whether the names refer to declared types is
left to Cedar.
"""

from __future__ import annotations

import copy
import re
from bisect import bisect_right
from collections.abc import Callable
from typing import Any, NamedTuple, NoReturn, TypeVar

from pdp.errors import PolicyDiagnostic, PolicyLoadError

__all__ = ["schema_to_json"]

_TOKEN = re.compile(
    r'(?P<space>\s+)|(?P<comment>//[^\n\r]*)|(?P<ident>[_a-zA-Z][_a-zA-Z0-9]*)'
    r'|(?P<number>[0-9]+)|(?P<string>"(?:\\.|[^"\\])*")|(?P<punct>::|[,;:{}\[\]<>=?@()])'
)
_ESCAPE = re.compile(r"\\(?:x([0-7][0-9a-fA-F])|u\{([0-9a-fA-F]{1,6})\}|(.))", re.DOTALL)
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", "0": "\0", "'": "'", '"': '"'}
# Identifiers the Cedar grammar reserves, and names a common type may not take.
_RESERVED = frozenset({"true", "false", "if", "then", "else", "in", "is", "like", "has"})
_RESERVED_TYPE_NAMES = frozenset(
    {"Bool", "Boolean", "Entity", "Extension", "Long", "Record", "Set", "String"})
# Sets and records nested deeper than this would exceed the nesting limit of Cedar's JSON reader.
_MAX_TYPE_DEPTH = 50
_T = TypeVar("_T")


class _Token(NamedTuple):
    kind: str  # ident, number, string, punct or eof
    text: str
    offset: int


class _Parser:
    def __init__(self, text: str, filename: str) -> None:
        self.text, self.filename = text, filename
        self.line_starts = [0] + [m.end() for m in re.finditer(r"\r\n|\n|\r", text)]
        self.tokens = self._tokenize()
        self.pos = self.depth = 0
        self.result: dict[str, dict[str, Any]] = {}
        self.declared: dict[tuple[str, str, str], None] = {}

    # -- tokens ---------------------------------------------------------------------------

    def _tokenize(self) -> list[_Token]:
        tokens: list[_Token] = []
        at, end = 0, len(self.text)
        while at < end:
            m = _TOKEN.match(self.text, at)
            if m is None:
                what = "unterminated string literal" if self.text[at] == '"' else (
                    f"unexpected character {self.text[at]!r}")
                self._fail(what, at)
            kind = m.lastgroup or ""
            if kind not in ("space", "comment"):
                tokens.append(_Token(kind, m.group(), at))
            at = m.end()
        tokens.append(_Token("eof", "", end))
        return tokens

    def _fail(self, message: str, offset: int | None = None) -> NoReturn:
        if offset is None:
            offset = self.tokens[self.pos].offset
        line = bisect_right(self.line_starts, offset)
        column = offset - self.line_starts[line - 1] + 1
        raise PolicyLoadError([PolicyDiagnostic(
            file=self.filename, line=line, column=column, message=message)])

    def _peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def _unexpected(self, expected: str) -> NoReturn:
        token = self._peek()
        found = "end of input" if token.kind == "eof" else f"`{token.text}`"
        self._fail(f"expected {expected}, found {found}")

    def _is(self, text: str, ahead: int = 0) -> bool:
        token = self._peek(ahead)
        return token.text == text and token.kind in ("punct", "ident")

    def _accept(self, text: str) -> bool:
        if self._is(text):
            self.pos += 1
            return True
        return False

    def _expect(self, text: str) -> None:
        if not self._accept(text):
            self._unexpected(f"`{text}`")

    # -- names ----------------------------------------------------------------------------

    def _any_ident(self) -> str:
        if self._peek().kind != "ident":
            self._unexpected("an identifier")
        self.pos += 1
        return self.tokens[self.pos - 1].text

    def _ident(self) -> str:
        if self._peek().text in _RESERVED:
            self._fail(f"`{self._peek().text}` is a reserved identifier")
        return self._any_ident()

    def _declared_ident(self) -> str:
        if self._peek().text == "__cedar":
            self._fail("use of the reserved `__cedar` namespace")
        return self._ident()

    def _string(self) -> str:
        token = self._peek()
        if token.kind != "string":
            self._unexpected("a string literal")
        self.pos += 1

        def unescape(m: re.Match[str]) -> str:
            code = m.group(1) or m.group(2)
            if code is not None:
                point = int(code, 16)
                if point < 0x110000 and not 0xD800 <= point <= 0xDFFF:
                    return chr(point)
            elif m.group(3) in _SIMPLE_ESCAPES:
                return _SIMPLE_ESCAPES[m.group(3)]
            self._fail(f"invalid escape sequence `{m.group()}`", token.offset + m.start() + 1)

        return _ESCAPE.sub(unescape, token.text[1:-1])

    def _name(self) -> str:
        return self._string() if self._peek().kind == "string" else self._ident()

    def _path(self) -> str:
        parts = [self._ident()]
        while self._is("::") and self._peek(1).kind == "ident":
            self.pos += 1
            parts.append(self._ident())
        return "::".join(parts)

    def _path_or_paths(self) -> list[str]:
        if not self._accept("["):
            return [self._path()]
        paths = [] if self._is("]") else [self._path()]
        while self._accept(","):
            paths.append(self._path())
        self._expect("]")
        return paths

    def _comma_list(self, item: Callable[[], _T]) -> list[_T]:
        items = [item()]
        while self._accept(","):
            items.append(item())
        return items

    def _annotations(self) -> dict[str, str]:
        annotations: dict[str, str] = {}
        while self._is("@"):
            at = self._peek().offset
            self.pos += 1
            key = self._any_ident()
            value = ""
            if self._accept("("):
                value = self._string()
                self._expect(")")
            if key in annotations:
                self._fail(f"duplicate annotation `@{key}`", at)
            annotations[key] = value
        return annotations

    def _declare(self, namespace: str, kind: str, name: str, offset: int) -> None:
        if (namespace, kind, name) in self.declared:
            where = f"{namespace}::{name}" if namespace else name
            self._fail(f"duplicate declaration of {kind} `{where}`", offset)
        self.declared[(namespace, kind, name)] = None

    # -- types ----------------------------------------------------------------------------

    def _descend(self, by: int) -> None:
        self.depth += by
        if self.depth > _MAX_TYPE_DEPTH:
            self._fail(f"types are nested more than {_MAX_TYPE_DEPTH} levels deep")

    def _type(self) -> dict[str, Any]:
        if self._is("Set") and self._is("<", 1):
            self._descend(1)
            self.pos += 2
            element = self._type()
            self._expect(">")
            self._descend(-1)
            return {"type": "Set", "element": element}
        if self._is("{"):
            return self._record()
        return {"type": "EntityOrCommon", "name": self._path()}

    def _record(self) -> dict[str, Any]:
        self._descend(1)
        self._expect("{")
        attributes: dict[str, Any] = {}
        while not self._accept("}"):
            if self._peek().kind not in ("ident", "string") and not self._is("@"):
                self._unexpected("an attribute name or `}`")
            annotations = self._annotations()
            name = self._name()
            optional = self._accept("?")
            self._expect(":")
            attribute = self._type()
            if optional:
                attribute["required"] = False
            if annotations:
                attribute["annotations"] = annotations
            attributes[name] = attribute
            if not self._accept(",") and not self._is("}"):
                self._unexpected("`,` or `}`")
        self._descend(-1)
        return {"type": "Record", "attributes": attributes}

    # -- declarations ---------------------------------------------------------------------

    def parse(self) -> dict[str, Any]:
        while self._peek().kind != "eof":
            annotations = self._annotations()
            if self._is("namespace"):
                self._namespace(annotations)
            else:
                self._declaration(self._definition(""), "", annotations)
        return self.result

    def _definition(self, namespace: str) -> dict[str, Any]:
        return self.result.setdefault(namespace, {"entityTypes": {}, "actions": {}})

    def _namespace(self, annotations: dict[str, str]) -> None:
        self._expect("namespace")
        start = self._peek().offset
        parts = [self._declared_ident()]
        while self._accept("::"):
            parts.append(self._declared_ident())
        name = "::".join(parts)
        if name in self.result:
            self._fail(f"duplicate namespace `{name}`", start)
        definition = self._definition(name)
        if annotations:
            definition["annotations"] = annotations
        self._expect("{")
        while not self._accept("}"):
            self._declaration(definition, name, self._annotations())

    def _declaration(self, into: dict[str, Any], namespace: str, notes: dict[str, str]) -> None:
        extra = {"annotations": notes} if notes else {}
        if self._accept("entity"):
            self._entity(into, namespace, extra)
        elif self._accept("action"):
            self._action(into, namespace, extra)
        elif self._accept("type"):
            offset, name = self._peek().offset, self._declared_ident()
            if name in _RESERVED_TYPE_NAMES:
                self._fail(f"`{name}` is a reserved schema keyword", offset)
            self._declare(namespace, "common type", name, offset)
            self._expect("=")
            into.setdefault("commonTypes", {})[name] = self._type() | extra
            self._expect(";")
        else:
            self._unexpected("`entity`, `action`, `type` or `namespace`"
                             if namespace == "" else "`entity`, `action`, `type` or `}`")

    def _entity(self, into: dict[str, Any], namespace: str, extra: dict[str, Any]) -> None:
        names = self._comma_list(lambda: (self._peek().offset, self._declared_ident()))
        entity: dict[str, Any] = {}
        if self._accept("enum"):
            self._expect("[")
            entity["enum"] = self._comma_list(self._string)
            self._expect("]")
        else:
            if self._accept("in"):
                entity["memberOfTypes"] = self._path_or_paths()
            if self._accept("=") or self._is("{"):
                entity["shape"] = self._record()
            if self._accept("tags"):
                entity["tags"] = self._type()
        self._expect(";")
        for offset, name in names:
            self._declare(namespace, "entity type", name, offset)
            into["entityTypes"][name] = copy.deepcopy(entity | extra)

    def _action(self, into: dict[str, Any], namespace: str, extra: dict[str, Any]) -> None:
        names = self._comma_list(lambda: (self._peek().offset, self._name()))
        action: dict[str, Any] = {}
        if self._accept("in"):
            bracketed = self._accept("[")
            action["memberOf"] = self._comma_list(self._action_ref) if bracketed else [
                self._action_ref()]
            if bracketed:
                self._expect("]")
        applies: dict[str, Any] = {"principalTypes": [], "resourceTypes": []}
        if self._accept("appliesTo"):
            applies = self._applies_to(names[0][1], names[0][0])
        action["appliesTo"] = applies
        if self._accept("attributes"):
            self._expect("{")
            self._expect("}")
        self._expect(";")
        for offset, name in names:
            self._declare(namespace, "action", name, offset)
            into["actions"][name] = copy.deepcopy(action | extra)

    def _action_ref(self) -> dict[str, str]:
        if self._peek().kind == "string":
            return {"id": self._string()}
        parts = [self._ident()]
        while self._accept("::"):
            if self._peek().kind == "string":
                return {"id": self._string(), "type": "::".join(parts)}
            parts.append(self._ident())
        if len(parts) > 1:
            self._unexpected("`::` and a quoted action name")
        return {"id": parts[0]}

    def _applies_to(self, action: str, action_offset: int) -> dict[str, Any]:
        self._expect("{")
        applies: dict[str, Any] = {}
        keys = {"principal": "principalTypes", "resource": "resourceTypes", "context": "context"}
        while True:
            token = self._peek()
            key = keys.get(token.text) if token.kind == "ident" else None
            if key is None:
                self._unexpected("`principal`, `resource` or `context`")
            if key in applies:
                self._fail(f"duplicate `{token.text}` declaration in action `{action}`")
            self.pos += 1
            self._expect(":")
            if key != "context":
                applies[key] = self._path_or_paths()
                if not applies[key]:
                    self._fail(f"for action `{action}`, `{token.text}` is `[]`, which is invalid",
                               token.offset)
            else:
                applies[key] = self._record() if self._is("{") else {"type": self._path()}
            if not self._accept(",") and not self._is("}"):
                self._unexpected("`,` or `}`")
            if self._accept("}"):
                break
        for key, word in (("principalTypes", "principal"), ("resourceTypes", "resource")):
            if key not in applies:
                self._fail(f"missing `{word}` declaration for action `{action}`", action_offset)
        return applies


def schema_to_json(text: str, filename: str = "<schema>") -> dict[str, Any]:
    """Translate a schema in Cedar schema syntax into the Cedar JSON schema format.

    The result, serialised with :func:`json.dumps`, is accepted by
    ``cedarpy.Schema.from_json_str`` and describes the same schema as ``text``. Raises
    :class:`PolicyLoadError` with the line and column (both from 1) of the first problem.
    """
    return _Parser(text, filename).parse()
