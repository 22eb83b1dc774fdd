"""Reading Cedar policy files and locating problems in them.

cedarpy parses whole texts (it is the judge of what Cedar accepts) and reports errors and
policies without positions. This module finds where each policy statement starts with a
lexer that follows Cedar's grammar for the parts that matter here:

* a string literal is ``"`` then any characters, a backslash escaping the next one, up to the
  closing ``"``; it may span lines (Cedar's ``"(\\\\.|[^"\\\\])*"``);
* a comment is ``//`` up to the end of the line; Cedar has no block comments;
* outside strings and comments, ``;`` occurs only as the end of a policy.

So the statements of a file Cedar accepts are exactly its policies, in order; every error can
be reported as ``file:line:column`` with the policy's ``@id`` (or its position and first line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Statement", "SplitError", "Token", "split_statements", "locate_in_statement",
           "tokens"]

_BACKTICKED = re.compile(r"`([^`]+)`")
_WORD = re.compile(r"[_a-zA-Z0-9]+")
_IDENT = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_LINE_END = "\n\r"


@dataclass(frozen=True, slots=True)
class Token:
    """A lexeme: ``kind`` is ``"string"`` (quotes included), ``"ident"`` or ``"punct"``."""

    kind: str
    text: str
    offset: int


class _Unterminated(Exception):
    def __init__(self, offset: int) -> None:
        self.offset = offset


def tokens(text: str, start: int = 0) -> list[Token]:
    """The tokens of ``text`` from ``start``, comments and whitespace skipped. A string cut by
    the end of the text raises ``_Unterminated`` (internal)."""
    out: list[Token] = []
    i, n = start, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == "/" and text.startswith("//", i):
            while i < n and text[i] not in _LINE_END:
                i += 1
        elif ch == '"':
            end = _string_end(text, i)
            out.append(Token("string", text[i:end], i))
            i = end
        else:
            m = _IDENT.match(text, i)
            if m is not None:
                out.append(Token("ident", m.group(), i))
                i = m.end()
            else:
                out.append(Token("punct", ch, i))
                i += 1
    return out


def _string_end(text: str, i: int) -> int:
    """Offset just past the string literal opening at ``i``."""
    j, n = i + 1, len(text)
    while j < n:
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if c == '"':
            return j + 1
        j += 1
    raise _Unterminated(i)


@dataclass(frozen=True, slots=True)
class Statement:
    """One policy statement (annotations included, the closing ``;`` included)."""

    file: str
    index: int  # position of the statement in its file, from 1
    text: str
    line: int  # where the statement starts, from 1
    column: int

    @property
    def annotations(self) -> list[tuple[str, str | None]]:
        """The leading ``@name("value")`` annotations, values as written (escapes kept)."""
        found: list[tuple[str, str | None]] = []
        try:
            toks = tokens(self.text)
        except _Unterminated:
            return found
        k = 0
        while k + 1 < len(toks) and toks[k].text == "@" and toks[k + 1].kind == "ident":
            name, value = toks[k + 1].text, None
            k += 2
            if k + 2 < len(toks) and toks[k].text == "(" and toks[k + 1].kind == "string" \
                    and toks[k + 2].text == ")":
                value = toks[k + 1].text[1:-1]
                k += 3
            found.append((name, value))
        return found

    @property
    def annotation_id(self) -> str | None:
        for name, value in self.annotations:
            if name == "id":
                return value
        return None

    @property
    def _body_offset(self) -> int:
        """Offset of the effect keyword (just past the annotations)."""
        try:
            toks = tokens(self.text)
        except _Unterminated:
            return 0
        k = 0
        while k + 1 < len(toks) and toks[k].text == "@" and toks[k + 1].kind == "ident":
            k += 2
            if k + 2 < len(toks) and toks[k].text == "(" and toks[k + 1].kind == "string" \
                    and toks[k + 2].text == ")":
                k += 3
        return toks[k].offset if k < len(toks) else 0

    @property
    def head(self) -> str:
        """The annotations before the ``permit``/``forbid`` keyword."""
        return self.text[: self._body_offset]

    @property
    def first_line(self) -> str:
        body = self.text[self._body_offset:].strip()
        return body.splitlines()[0][:120] if body else ""

    def describe(self) -> str:
        if self.annotation_id is not None:
            return f'@id("{self.annotation_id}")'
        return f"#{self.index} `{self.first_line}`"

    def position_of(self, offset: int) -> tuple[int, int]:
        """File line and column of a character offset inside this statement."""
        before = self.text[:offset]
        newlines = before.count("\n")
        if newlines == 0:
            return self.line, self.column + offset
        return self.line + newlines, offset - before.rfind("\n")


@dataclass(frozen=True, slots=True)
class SplitError:
    file: str
    line: int
    column: int
    message: str


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - text.rfind("\n", 0, offset)


def split_statements(file: str, text: str) -> tuple[list[Statement], list[SplitError]]:
    """Split Cedar policy text at each ``;`` outside strings and comments."""
    statements: list[Statement] = []
    try:
        toks = tokens(text)
    except _Unterminated as exc:
        # the statements before the unterminated string are still worth reporting on
        toks = tokens(text[: exc.offset])
        found, _ = _statements(file, text, toks)
        return found, [SplitError(file, *_position(text, exc.offset),
                                  "unterminated string literal")]
    statements, start = _statements(file, text, toks)
    if start is not None:
        return statements, [SplitError(file, *_position(text, start),
                                       "policy is not terminated by ';'")]
    return statements, []


def _statements(file: str, text: str, toks: list[Token]) -> tuple[list[Statement], int | None]:
    statements: list[Statement] = []
    start: int | None = None
    for tok in toks:
        if start is None:
            start = tok.offset
        if tok.kind == "punct" and tok.text == ";":
            statements.append(Statement(file, len(statements) + 1,
                                        text[start: tok.offset + 1], *_position(text, start)))
            start = None
    return statements, start


def locate_in_statement(statement: Statement, message: str) -> tuple[int, int]:
    """Best position for an error message about ``statement``.

    cedarpy messages name the offending token in backticks (``unexpected token `}```), or end
    with it (``invalid policy condition: whe``). The first occurrence of that token after the
    statement's annotations is taken; failing that, the statement's own start.
    """
    candidates = _BACKTICKED.findall(message)
    tail = message.rsplit(":", 1)[-1].strip() if ":" in message else ""
    if tail and " " not in tail:
        candidates.append(tail)
    body_start = statement._body_offset
    for token in candidates:
        token = token.split("::")[-1].strip('"') if token.count("::") > 1 else token
        at = _find_token(statement.text, token, body_start)
        if at >= 0:
            return statement.position_of(at)
    return statement.line, statement.column


def _find_token(text: str, token: str, start: int) -> int:
    """Offset of ``token`` at or after ``start``; an identifier only as a whole word (the
    ``whe`` of ``when`` is not the stray ``whe``), falling back to any occurrence."""
    if _WORD.fullmatch(token):
        m = re.compile(rf"(?<![_a-zA-Z0-9]){re.escape(token)}(?![_a-zA-Z0-9])").search(
            text, start)
        if m is not None:
            return m.start()
    return text.find(token, start)
