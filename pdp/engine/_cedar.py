"""The one place that calls cedarpy's evaluator.

cedarpy's public ``is_authorized_batch`` re-encodes contexts with ``json.dumps`` and wraps
every answer in Python objects; the extension function it wraps takes JSON strings and
returns JSON strings, which is what the hot path has in hand anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import cedarpy
import orjson

__all__ = ["authorize_batch"]

_raw_batch: Callable[..., list[str]] | None
try:  # the extension's batch entry point; the public wrapper is the fallback
    from cedarpy import _internal as _ext

    _raw_batch = _ext.is_authorized_batch
except (ImportError, AttributeError):  # pragma: no cover - depends on the cedarpy build
    _raw_batch = None


def authorize_batch(requests: Sequence[dict[str, Any]], policy_set: Any,
                    entities_json: Any) -> list[dict[str, Any]]:
    """Evaluate requests (contexts already JSON text) against one policy set and entity set
    (entity JSON text, or a parsed ``cedarpy.Entities``' inner handle).

    Returns Cedar's answers as dicts: ``decision`` (Allow/Deny/NoDecision) and ``diagnostics``.
    Raises whatever cedarpy raises; the engine turns that into a deny.
    """
    if _raw_batch is not None:
        return [orjson.loads(s) for s in _raw_batch(list(requests), policy_set, entities_json,
                                                     None, False)]
    results = cedarpy.is_authorized_batch(
        [dict(r, context=orjson.loads(r["context"])) for r in requests], policy_set,
        entities_json)
    return [r._authz_resp for r in results]
