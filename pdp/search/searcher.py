"""Subject, resource and action search (AuthZEN 1.0 section 8) over the store and the engine.

Candidates are the stored entities of the searched type (for actions, the actions the policy
set knows: its schema's, else those its policies name), walked in id order with keyset
pagination (:meth:`~pdp.entities.store.EntityStore.candidates`), never loaded as a whole.
Candidates that no permit policy can allow are dropped by a sound prefilter built from Cedar's
partial evaluation (:mod:`pdp.search.prefilter`); every other candidate is decided by the same
engine as ``/access/v1/evaluation``, in batches, so every result evaluates to ``true`` there,
and membership is transitive: a candidate's ancestors (groups, folders, roles) are part of its
entity slice.

A page ends when ``limit`` results are found, the candidates run out, or ``max_scan``
candidates have been examined for it (``PDP_MAX_SEARCH_SCAN``): then the page has fewer than
``limit`` results (perhaps none) and a ``next_token`` to go on from there, so one request's
work is bounded however sparse the matches are. Its continuation is
a page token (:mod:`pdp.search.tokens`) holding the last candidate examined; ``next_token``
is ``""`` on the last page. An unknown type has no candidates and yields no results.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import Field

from pdp.authzen.model import Action, Entity, EvaluationRequest
from pdp.engine import Engine, Translator, cedar_name_ok
from pdp.policies.compiled import CompiledPolicySet
from pdp.search.prefilter import Prefilter
from pdp.search.request import SearchKind, SearchRequest
from pdp.search.tokens import PageTokens
from pdp.settings import SettingsModel

__all__ = ["SearchOptions", "SearchResult", "Searcher"]


class SearchOptions(SettingsModel):
    """How searches run, from the settings (``PDP_NAMESPACE``, ``PDP_MAX_SEARCH_PAGE``,
    ``PDP_MAX_SEARCH_SCAN``...)."""

    namespace: str = Field(default="", description="The Cedar namespace of the entity and "
                           "action types (PDP_NAMESPACE).")
    action_properties_key: str = Field(
        default="action_properties", description="The context key the action's properties "
        "are passed to Cedar under.")
    batch_size: int = Field(default=500, ge=1, description="Candidates decided per engine "
                            "call.")
    prefilter: bool = Field(default=True, description="Drop the candidates Cedar's partial "
                            "evaluation proves denied before deciding the others.")
    default_limit: int = Field(default=1000, ge=1, description="Results per page when the "
                               "request gives no page.limit.")
    max_limit: int = Field(default=1000, ge=1, description="The largest page.limit a "
                           "request may ask for.")
    max_scan: int = Field(default=10_000, ge=1, description="Candidates examined per "
                          "request (per page).")


@dataclass(frozen=True, slots=True)
class SearchResult:
    request: SearchRequest
    results: list[dict[str, str]]
    next_token: str | None  # None: no further page
    examined: int = 0  # candidates decided
    errors: int = 0  # candidates whose decision failed (denied)
    policy_version: str = ""

    def to_wire(self) -> dict[str, Any]:
        """``{"page"?, "results"}``: ``page`` (first) when the request was paged or more
        results follow; a complete unpaged answer is exactly ``{"results": [...]}``."""
        body: dict[str, Any] = {}
        if self.request.paged or self.next_token:
            body["page"] = {"next_token": self.next_token or "", "count": len(self.results)}
        body["results"] = self.results
        return body


Fetch = Callable[[str | None, int], Sequence[str]]


class Searcher:
    def __init__(self, engine: Engine, tokens: PageTokens,
                 options: SearchOptions | None = None) -> None:
        self._engine = engine
        self._tokens = tokens
        self.options = options or SearchOptions()

    def search(self, request: SearchRequest) -> SearchResult:
        compiled = self._engine.current()
        after: str | None = None
        if request.token:  # a follow-up: the pagination's own page.limit unless restated
            after, bound = self._tokens.open_page(request.token, request.fingerprint,
                                                  request.limit)
            if request.limit is None and bound is not None:
                request = replace(request, limit=bound)
        fetch = self._source(request, compiled.action_names())
        prefilter = self._prefilter(request, compiled) if fetch is not None else None
        limit = request.limit or self.options.default_limit
        batch = self.options.batch_size
        found: list[str] = []
        examined = errors = 0
        more = False
        # without a prefilter every candidate is decided: fetch about what the page needs
        size = min(batch, max(16, 2 * limit)) if prefilter is None else 4 * batch
        scanned = 0
        while fetch is not None:
            budget = self.options.max_scan - scanned
            if budget <= 0:  # the page ends here; the token goes on from the last examined
                more = bool(fetch(after, 1))
                break
            asked = min(size, budget)
            candidates = fetch(after, asked)
            if not candidates:
                break
            scanned += len(candidates)
            keep = (prefilter.keep(candidates, self._cedar_type(request))
                    if prefilter is not None else None)
            position = 0
            stop: int | None = None
            while position < len(candidates) and stop is None:
                # decide about as many candidates as the rest of the page needs
                want = min(batch, max(16, 2 * (limit - len(found))))
                chosen: list[int] = []
                end = position
                while end < len(candidates) and len(chosen) < want:
                    if keep is None or keep[end]:
                        chosen.append(end)
                    end += 1
                decided = dict(zip(chosen, self._engine.decide(
                    [self._request(request, candidates[i]) for i in chosen]) if chosen else [],
                    strict=True))
                for i in range(position, end):
                    decision = decided.get(i)
                    if decision is None:
                        continue  # the prefilter proved that no policy permits it
                    if decision.allowed:
                        found.append(candidates[i])
                        if len(found) == limit:
                            stop = i
                            break
                    elif decision.outcome == "error":
                        errors += 1
                position = end
            if stop is not None:
                examined += stop + 1
                after = candidates[stop]
                more = stop < len(candidates) - 1 or bool(fetch(after, 1))
                break
            examined += len(candidates)
            after = candidates[-1]
            if len(candidates) < asked:
                break
            if prefilter is None:
                size = min(batch, size * 2)
        token = (self._tokens.issue(request.fingerprint, after, request.limit)
                 if more and after is not None else None)
        return SearchResult(request, self._results(request, found), token, examined, errors,
                            compiled.version)

    def _prefilter(self, request: SearchRequest, compiled: CompiledPolicySet,
                   ) -> Prefilter | None:
        if not self.options.prefilter or request.kind is SearchKind.ACTION:
            return None
        assert request.action is not None
        translator = Translator(compiled.schema_types, namespace=self.options.namespace,
                                action_properties_key=self.options.action_properties_key)
        return Prefilter.build(
            compiled, self._engine.store, translator,
            "principal" if request.kind is SearchKind.SUBJECT else "resource",
            request.subject, request.action.name, request.resource, request.context,
            self._engine.policy_set())

    def _cedar_type(self, request: SearchRequest) -> str:
        searched = request.searched_type
        assert searched is not None
        prefix = self.options.namespace
        return f"{prefix}::{searched}" if prefix else searched

    # -- candidates -----------------------------------------------------------------------

    def _source(self, request: SearchRequest, actions: Sequence[str]) -> Fetch | None:
        if request.kind is SearchKind.ACTION:
            names = sorted(actions)

            def fetch_actions(after: str | None, limit: int) -> Sequence[str]:
                start = 0 if after is None else bisect.bisect_right(names, after)
                return names[start:start + limit]

            return fetch_actions
        searched = request.searched_type
        if searched is None or not cedar_name_ok(searched):
            return None  # not a type name at all: unknown, so nothing to find
        cedar_type = self._cedar_type(request)
        store = self._engine.store

        def fetch_entities(after: str | None, limit: int) -> Sequence[str]:
            return store.candidates(cedar_type, after=after, limit=limit)

        return fetch_entities

    @staticmethod
    def _request(request: SearchRequest, candidate: str) -> EvaluationRequest:
        if request.kind is SearchKind.SUBJECT:
            assert request.action is not None
            return EvaluationRequest(Entity(request.subject.type, candidate), request.action,
                                     request.resource, request.context)
        if request.kind is SearchKind.RESOURCE:
            assert request.action is not None
            return EvaluationRequest(request.subject, request.action,
                                     Entity(request.resource.type, candidate), request.context)
        return EvaluationRequest(request.subject, Action(candidate), request.resource,
                                 request.context)

    @staticmethod
    def _results(request: SearchRequest, ids: Sequence[str]) -> list[dict[str, str]]:
        if request.kind is SearchKind.ACTION:
            return [{"name": i} for i in ids]
        searched = request.searched_type
        assert searched is not None
        return [{"type": searched, "id": i} for i in ids]
