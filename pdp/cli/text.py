"""Help text for people: a module docstring without its reST markup."""

from __future__ import annotations

import re

__all__ = ["plain"]

_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def plain(doc: str | None) -> str:
    """``code`` → code, :role:`x` → x, a paragraph's closing ``::`` → ``:``."""
    text = _ROLE.sub(r"\1", doc or "")
    text = re.sub(r"::$", ":", text, flags=re.M)
    return text.replace("``", "")
