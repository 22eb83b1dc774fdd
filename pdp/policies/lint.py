"""Warnings about a policy set that loads: things that are legal Cedar but likely mistakes.

:func:`lint` looks at the policies of a compiled set (their :class:`PolicyInfo`) and returns
:class:`LintWarning` values; nothing here fails a load. ``pdp check`` prints them as
``file:line:column: warning: message`` and fails on them only when asked (``--strict``).

* ``missing-id``: a policy without an ``@id("...")`` annotation. Decisions, the decision log
  and explanations then name it by its position (``file:line``), which changes whenever a
  line is added above it.
* ``duplicate-id``: two or more policies with the same ``@id``. Neither can keep it (ids are
  unique in a set), so each is named by its position instead; the warning names every place
  the ``@id`` is used.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pdp.policies.compiled import PolicyInfo

__all__ = ["LintWarning", "lint"]


@dataclass(frozen=True, slots=True)
class LintWarning:
    """One warning, located at the start of the policy it is about."""

    code: str  # "missing-id" or "duplicate-id"
    file: str
    line: int
    column: int
    message: str
    policy: str  # the policy's id in the compiled set

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: warning: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "file": self.file, "line": self.line,
                "column": self.column, "policy": self.policy, "message": self.message}


def lint(policies: Iterable[PolicyInfo], directory: Path | str | None = None,
         ) -> list[LintWarning]:
    """The warnings about ``policies`` (a compiled set's ``policies``), in source order.

    Files are named as the policies name them (``a.cedar``), or as ``directory/a.cedar``
    when ``directory`` is given."""
    infos = list(policies)

    def path(p: PolicyInfo) -> str:
        return p.file if directory is None else str(Path(directory) / p.file)

    def where(p: PolicyInfo) -> str:
        return f"{path(p)}:{p.line}:{p.column}"

    by_annotation: dict[str, list[PolicyInfo]] = {}
    for p in infos:
        if p.annotation_id is not None:
            by_annotation.setdefault(p.annotation_id, []).append(p)
    found: list[LintWarning] = []
    for p in infos:
        if p.annotation_id is None:
            found.append(LintWarning(
                "missing-id", path(p), p.line, p.column,
                f"policy `{p.first_line}` has no @id annotation; it is named {p.id} "
                "(add @id(\"...\") to give it a stable name)", p.id))
            continue
        same = by_annotation[p.annotation_id]
        if len(same) > 1:
            others = ", ".join(where(o) for o in same if o is not p)
            found.append(LintWarning(
                "duplicate-id", path(p), p.line, p.column,
                f'@id("{p.annotation_id}") is also used at {others}; each of these policies '
                f"is named by its position instead (this one: {p.id})", p.id))
    return found
