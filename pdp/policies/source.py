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

__all__ = ["Statement", "SplitError", "split_statements", "locate_in_statement"]

_BACKTICKED = re.compile(r"`([^`]+)`")
_WORD = re.compile(r"[_a-zA-Z0-9]+")
# One lexeme at a time, each alternative linear: whitespace, a comment (to the end of the
# line), a string literal (a backslash escapes the next character other than a line feed),
# an identifier, or any single character. A lone `"` is a string that does not terminate.
_TOKEN = re.compile(r'(?P<skip>\s+|//[^\n\r]*)|(?P<string>"(?:[^"\\]|\\.)*")'
                    r"|(?P<ident>[_a-zA-Z][_a-zA-Z0-9]*)|(?P<other>[\s\S])")


@dataclass(frozen=True, slots=True)
class Statement:
    """One policy statement (annotations included, the closing ``;`` included)."""

    file: str
    index: int  # position of the statement in its file, from 1
    text: str
    line: int  # where the statement starts, from 1
    column: int
    body_offset: int = 0  # where the ``permit``/``forbid`` keyword is, in ``text``
    annotations: tuple[tuple[str, str | None], ...] = ()  # leading ``@name("value")``

    @property
    def annotation_id(self) -> str | None:
        for name, value in self.annotations:
            if name == "id":
                return value
        return None

    @property
    def head(self) -> str:
        """The annotations before the ``permit``/``forbid`` keyword."""
        return self.text[: self.body_offset]

    @property
    def first_line(self) -> str:
        body = self.text[self.body_offset:].strip()
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


class _Lines:
    """Line and column of increasing offsets in one text, counted once."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._offset = 0
        self._line = 1
        self._line_start = 0

    def at(self, offset: int) -> tuple[int, int]:
        text = self._text
        if offset < self._offset:  # (not expected) start over
            self._offset, self._line, self._line_start = 0, 1, 0
        newlines = text.count("\n", self._offset, offset)
        if newlines:
            self._line += newlines
            self._line_start = text.rfind("\n", self._offset, offset) + 1
        self._offset = offset
        return self._line, offset - self._line_start + 1


def split_statements(file: str, text: str) -> tuple[list[Statement], list[SplitError]]:
    """Split Cedar policy text at each ``;`` outside strings, comments and brackets."""
    lines = _Lines(text)
    statements: list[Statement] = []
    start: int | None = None
    state, name, value, body = 0, "", "", 0
    annotations: list[tuple[str, str | None]] = []
    opened: list[int] = []  # brackets of the current statement not closed yet
    last = 0  # just after the current statement's last token
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "skip":
            continue
        token, at = m.group(), m.start()
        if kind == "other":
            if token == '"':
                return statements, [SplitError(file, *lines.at(at),
                                               "unterminated string literal")]
            if token in "([{":
                opened.append(at)
            elif token in ")]}" and opened:
                opened.pop()
            elif token == ";" and start is not None and not opened:
                if state >= 0:  # (nothing but annotations)
                    body = at
                statements.append(Statement(file, len(statements) + 1, text[start:at + 1],
                                            *lines.at(start), body - start,
                                            tuple(annotations)))
                start = None
                continue
        last = m.end()
        if start is None:
            start, state, annotations = at, 0, []
        if state < 0:
            continue
        # the leading annotations: ( "@" IDENT [ "(" STRING ")" ] )*
        if state == 0:
            state, body = (1, 0) if token == "@" else (-1, at)
        elif state == 1:
            state, name, body = (2, token, 0) if kind == "ident" else (-1, "", at)
        elif state == 2:
            if token == "(":
                state = 3
            else:
                annotations.append((name, None))
                state, body = (1, 0) if token == "@" else (-1, at)
        elif state == 3:
            state, value, body = (4, token[1:-1], 0) if kind == "string" else (-1, "", at)
        else:
            if token == ")":
                annotations.append((name, value))
                state = 0
            else:
                state, body = -1, at
    if start is not None:
        if opened:  # the outermost bracket left open, where it opens
            return statements, [SplitError(
                file, *lines.at(opened[0]), f"`{text[opened[0]]}` is never closed (a `;` "
                "inside brackets does not end the policy)")]
        return statements, [SplitError(file, *lines.at(last),
                                       "expected `;` at the end of the policy")]
    return statements, []


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
    body_start = statement.body_offset
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
