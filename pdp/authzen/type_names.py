"""AuthZEN types that are not Cedar identifiers (``support-agent``, ``ref/prompt``): a table
naming the Cedar entity type each one stands for.

AuthZEN entity types are free strings; Cedar's are identifiers (``[_a-zA-Z][_a-zA-Z0-9]*``,
``::``-separated). A deployment lists each AuthZEN type that is not one, with the Cedar name
policies use for it (``PDP_TYPE_NAMES='{"support-agent": "support_agent", "ref/prompt":
"ref_prompt"}'``); every other type is used verbatim, as before, and one that is not a Cedar
name is still refused loudly (an item error naming the table).

The table is reversible by construction: its values are distinct valid Cedar names, and a
value may not itself arrive verbatim as an AuthZEN type (``support_agent`` in a request is
refused while ``support-agent`` stands for it), so every Cedar type has exactly one AuthZEN
type (:meth:`TypeNames.authzen`). Stored entities, policies and the schema use the Cedar
name; the namespace prefix, if any, is added after the table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from pdp.errors import TranslationError

_IDENT = r"[_a-zA-Z][_a-zA-Z0-9]*"
_NAME = re.compile(rf"{_IDENT}(?:::{_IDENT})*")
# Cedar's grammar: IDENT excludes only these; `principal`, `resource`, `permit`… are valid
# type names (`resource is resource` parses).
_RESERVED = frozenset({"true", "false", "if", "then", "else", "in", "is", "like", "has",
                       "__cedar"})


def cedar_name_ok(name: str) -> bool:
    """Whether ``name`` is a Cedar name (``Ident`` or ``Ns::Ident``, no reserved word)."""
    return _NAME.fullmatch(name) is not None and not any(
        part in _RESERVED for part in name.split("::"))

__all__ = ["NO_TYPE_NAMES", "TypeNames", "cedar_name_ok"]


class TypeNames:
    __slots__ = ("_to_cedar", "_to_authzen")

    def __init__(self, table: Mapping[str, str]) -> None:
        reverse: dict[str, str] = {}
        if table:  # (the empty table is built while pdp.engine.translate is being imported)
            reverse = _checked(table)
        self._to_cedar = MappingProxyType(dict(table))
        self._to_authzen = MappingProxyType(reverse)

    def __bool__(self) -> bool:
        return bool(self._to_cedar)

    def cedar(self, authzen_type: str, field: str) -> str:
        """The Cedar name of ``authzen_type`` (itself unless the table maps it); raises
        :class:`TranslationError` for a name the table reserves."""
        mapped = self._to_cedar.get(authzen_type)
        if mapped is not None:
            return mapped
        owner = self._to_authzen.get(authzen_type)
        if owner is not None:
            raise TranslationError(
                f"{field}.type {authzen_type!r} is the Cedar name of {owner!r} "
                "(PDP_TYPE_NAMES): send the AuthZEN type", field=f"{field}.type")
        return authzen_type

    def authzen(self, cedar_type: str) -> str:
        """The AuthZEN type a Cedar type name stands for."""
        return self._to_authzen.get(cedar_type, cedar_type)


def _checked(table: Mapping[str, str]) -> dict[str, str]:
    """The reverse of ``table``; ValueError unless it is a reversible table of valid names."""
    reverse: dict[str, str] = {}
    for authzen, cedar in table.items():
        if not isinstance(authzen, str) or not authzen:
            raise ValueError("type names: an AuthZEN type is a non-empty string")
        if not isinstance(cedar, str) or not cedar_name_ok(cedar):
            raise ValueError(f"type names: {cedar!r} (for {authzen!r}) is not a valid "
                             "Cedar type name")
        if cedar in reverse:
            raise ValueError(f"type names: {reverse[cedar]!r} and {authzen!r} both name "
                             f"{cedar!r}: the table must be reversible")
        reverse[cedar] = authzen
    for cedar, authzen in reverse.items():
        if cedar in table and table[cedar] != cedar:
            raise ValueError(f"type names: {cedar!r} names the Cedar type of {authzen!r} "
                             "and is mapped itself: the table must be reversible")
    return reverse


#: The empty table: every type verbatim.
NO_TYPE_NAMES = TypeNames({})
