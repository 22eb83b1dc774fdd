"""The one interface both evaluators sit behind: the native one (:mod:`pdp.engine.native`) and
cedarpy (:mod:`pdp.engine.cedarpy_batch`).

``PDP_EVALUATOR`` (:attr:`~pdp.engine.EngineOptions.evaluator`) picks the chain the engine
hands prepared requests to: ``native`` is the native evaluator, then cedarpy for what it does
not take; ``cedarpy`` is cedarpy alone. Everything around the evaluation (slices, batching
for cedarpy, the decision cache, explanations, the fail-closed verdict of
:mod:`pdp.engine.verdict`) is the same with either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pdp.authzen.model import Decision
from pdp.engine.prepare import Prepared
from pdp.engine.version import VersionState
from pdp.policies.compiled import CompiledPolicySet
from pdp.policies.index import SliceIndex

__all__ = ["Evaluator"]


class Evaluator(Protocol):
    """Decides prepared requests of one policy version."""

    def prepare(self, compiled: CompiledPolicySet, index: SliceIndex | None = None) -> object:
        """Get ready for a new policy version (``index``: its slice index with the stored
        template links), before any request waits for it."""
        ...

    def authorize_batch(self, prepared: Sequence[Prepared], state: VersionState,
                        decisions: list[Decision | None], evaluated: list[int],
                        shared: bool) -> list[Prepared]:
        """Decide ``prepared``: each decision goes to ``decisions[p.index]``, and the index of
        each decision a completed evaluation made (cacheable) to ``evaluated``; an error is a
        deny. ``shared``: the requests' closures are shared across calls (memoised). Returns
        the requests left undecided, for the next evaluator."""
        ...
