"""Reading Cedar policy files and locating problems in them.

cedarpy parses and validates whole texts and reports errors without positions. This module
splits each ``.cedar`` file into its policy statements, remembering where each one starts, so
that every error can be reported as ``file:line:column`` with the policy's ``@id`` (or its
position and first line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Statement", "SplitError", "split_statements", "locate_in_statement"]

_ID_ANNOTATION = re.compile(r'@id\s*\(\s*"((?:[^"\\]|\\.)*)"\s*\)')
_BACKTICKED = re.compile(r"`([^`]+)`")
_EFFECT = re.compile(r"\b(permit|forbid)\s*\(")
_WORD = re.compile(r"[_a-zA-Z0-9]+")


@dataclass(frozen=True, slots=True)
class Statement:
    """One policy statement (annotations included, the closing ``;`` included)."""

    file: str
    index: int  # position of the statement in its file, from 1
    text: str
    line: int  # where the statement starts, from 1
    column: int

    @property
    def annotation_id(self) -> str | None:
        m = _ID_ANNOTATION.search(self.head)
        return m.group(1) if m else None

    @property
    def head(self) -> str:
        """The annotations before the ``permit``/``forbid`` keyword."""
        m = _EFFECT.search(self.text)
        return self.text[: m.start()] if m else self.text

    @property
    def first_line(self) -> str:
        for raw in self.text.splitlines():
            stripped = raw.strip()
            if stripped and not stripped.startswith("@"):
                return stripped[:120]
        return self.text.strip().splitlines()[0][:120] if self.text.strip() else ""

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


def split_statements(file: str, text: str) -> tuple[list[Statement], list[SplitError]]:
    """Split Cedar policy text at top-level ``;``, honouring strings and comments."""
    statements: list[Statement] = []
    errors: list[SplitError] = []
    i, n = 0, len(text)
    line, col = 1, 1
    start: int | None = None
    start_pos = (1, 1)
    depth = 0
    opened: list[tuple[str, int, int]] = []  # unclosed brackets of the current statement
    last = (1, 1)  # just after the last character of the current statement (not a comment)

    def advance(k: int) -> None:
        nonlocal i, line, col
        for _ in range(k):
            if i < n and text[i] == "\n":
                line += 1
                col = 1
            else:
                col += 1
            i += 1

    while i < n:
        ch = text[i]
        if ch == "/" and text.startswith("//", i):
            while i < n and text[i] != "\n":
                advance(1)
            continue
        if ch.isspace():
            advance(1)
            continue
        if start is None:
            start, start_pos = i, (line, col)
        if ch == '"':
            str_line, str_col = line, col
            advance(1)
            while i < n and text[i] != '"':
                if text[i] == "\\":
                    advance(1)
                if text[i : i + 1] == "\n":
                    break
                advance(1)
            if i >= n or text[i] != '"':
                errors.append(SplitError(file, str_line, str_col, "unterminated string literal"))
                return statements, errors
            advance(1)
            last = (line, col)
            continue
        if ch in "([{":
            depth += 1
            opened.append((ch, line, col))
        elif ch in ")]}":
            depth -= 1
            if opened:
                opened.pop()
        elif ch == ";" and depth <= 0:
            advance(1)
            statements.append(Statement(file, len(statements) + 1, text[start:i], *start_pos))
            start, depth, opened = None, 0, []
            continue
        advance(1)
        last = (line, col)
    if start is not None:
        if opened:  # report the outermost bracket left open, where it opens
            bracket, at_line, at_col = opened[0]
            errors.append(SplitError(
                file, at_line, at_col,
                f"`{bracket}` is never closed (a `;` inside brackets does not end the policy)"))
        else:
            errors.append(SplitError(file, *last, "expected `;` at the end of the policy"))
    return statements, errors


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
    body_start = 0
    for m in _ID_ANNOTATION.finditer(statement.text):
        body_start = m.end()
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
