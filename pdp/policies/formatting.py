"""Formatting Cedar policy text with Cedar's own formatter (``cedarpy.format_policies``).

:func:`format_cedar` returns the formatted text, or raises
:class:`~pdp.errors.PolicyLoadError` when the text does not parse (located at the first
statement that does not, as ``pdp check`` would) or when formatting would lose something.
Cedar's formatter keeps ``//`` comments and annotations; as a safeguard the result is
refused unless it has the same comments, in the same order, and parses to the same policies
as the input, so a formatter bug can never silently delete a comment or change a policy.
"""

from __future__ import annotations

import json

from pdp.cedar import _cedarpy
from pdp.errors import CedarInputError, PolicyDiagnostic, PolicyLoadError
from pdp.policies.source import locate_in_statement, split_statements

__all__ = ["format_cedar", "comments"]


def format_cedar(text: str, file: str, *, line_width: int = 80, indent_width: int = 2) -> str:
    """``text`` formatted; ``file`` names it in diagnostics."""
    try:
        formatted = _cedarpy.format_policies(text, line_width=line_width,
                                             indent_width=indent_width)
    except CedarInputError as exc:
        raise PolicyLoadError([_locate(text, file, str(exc))]) from None
    if text.strip() and comments(formatted) != comments(text):
        raise PolicyLoadError([PolicyDiagnostic(
            file, "not formatted: Cedar's formatter would change or drop comments")])
    if _policies(formatted) != _policies(text):
        raise PolicyLoadError([PolicyDiagnostic(
            file, "not formatted: Cedar's formatter would change the policies")])
    return formatted if text.strip() else text


def comments(text: str) -> list[str]:
    """The ``//`` comments of Cedar text (outside string literals), stripped, in order."""
    found: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            i += 1
            while i < n and text[i] not in '"\n':
                i += 2 if text[i] == "\\" else 1
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            found.append(text[i + 2:end].strip())
            i = end
        else:
            i += 1
    return found


def _policies(text: str) -> object:
    try:
        return json.loads(_cedarpy.policies_to_json(text))
    except (CedarInputError, ValueError):
        return None


def _locate(text: str, file: str, fallback: str) -> PolicyDiagnostic:
    statements, errors = split_statements(file, text)
    if errors:
        e = errors[0]
        return PolicyDiagnostic(file, f"syntax error: {e.message}", e.line, e.column)
    for st in statements:
        try:
            _cedarpy.policies_to_json(st.text)
        except CedarInputError as exc:
            line, column = locate_in_statement(st, str(exc))
            return PolicyDiagnostic(file, f"syntax error: {exc}", line, column, st.describe())
    return PolicyDiagnostic(file, f"cannot format: {fallback}")
