"""Which tools a caller may be shown (the gateway's optional ``tools/list`` filtering).

The rule, sound by construction — a tool is never shown as usable on a guess:

* a tool whose definition was refused is never shown (every call of it is a mapping error);
* a tool whose request does not depend on its arguments (no mapping: the default
  ``tools/call`` request on ``tool::<name>``; or a mapping none of whose references reads the
  call's ``params``/``$properties``) is decided exactly as a call would be — the same request,
  the caller's claims — and shown only when every decision is ``true``;
* a tool whose request depends on its arguments cannot be decided before the call: it is
  shown, marked ``_meta["org.openid.authzen/authorization"] = "per-call"`` (each call is
  decided on its arguments), never as decided.

:func:`depends_on_arguments` is conservative: a CEL expression that mentions ``params`` at
all counts, even ``params.name``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pdp.coaz.binding import CelResolver
from pdp.coaz.defaults import tools_call_request
from pdp.coaz.options import MappingOptions
from pdp.coaz.outcome import Evaluate
from pdp.coaz.sep import SepResolver
from pdp.coaz.tools import ToolEntry

__all__ = ["PER_CALL", "VISIBILITY_META", "depends_on_arguments", "probe_request"]

#: The ``_meta`` key marking a tool whose calls are decided one by one on their arguments.
VISIBILITY_META = "org.openid.authzen/authorization"
PER_CALL = "per-call"


def depends_on_arguments(entry: ToolEntry) -> bool:
    mapping = entry.mapping
    if mapping is None:
        return False
    resolve: Any = mapping.resolve
    if isinstance(resolve, SepResolver):
        return any(ref.root == "properties" for ref in resolve.refs)
    if isinstance(resolve, CelResolver):
        return any("params" in e.source for e in resolve.expressions)
    expressions = getattr(resolve, "expressions", None)
    if expressions is None:
        return True  # unknown resolver: assume the worst
    return any("params" in e.source for e in expressions)


def probe_request(entry: ToolEntry, claims: Mapping[str, Any],
                  options: MappingOptions) -> Evaluate:
    """The request any call of ``entry`` makes (only for a tool whose request does not depend
    on its arguments); raises :class:`~pdp.errors.MappingError` like a call would."""
    token = claims if type(claims) is dict else dict(claims)
    if entry.mapping is None:
        return tools_call_request(entry.name, token, options)
    return entry.mapping.build({"name": entry.name, "arguments": {}}, token, options)
