"""Subject, resource and action search (AuthZEN 1.0 section 8) over the store and the engine.

Candidates are the stored entities of the searched type (for actions, the actions the policy
set knows: its schema's, else those its policies name), walked in id order with keyset
pagination (:meth:`~pdp.entities.store.EntityStore.candidates`), never loaded as a whole.
Each candidate is decided by the same engine as ``/access/v1/evaluation``, in batches, so
every result evaluates to ``true`` there, and membership is transitive: a candidate's
ancestors (groups, folders, roles) are part of its entity slice.

A page ends when ``limit`` results are found or the candidates run out. Its continuation is
a page token (:mod:`pdp.search.tokens`) holding the last candidate examined; ``next_token``
is ``""`` on the last page. An unknown type has no candidates and yields no results.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pdp.authzen.model import Action, Entity, EvaluationRequest
from pdp.engine import Engine, cedar_name_ok
from pdp.search.request import SearchKind, SearchRequest
from pdp.search.tokens import PageTokens

__all__ = ["SearchOptions", "SearchResult", "Searcher"]


@dataclass(frozen=True, slots=True)
class SearchOptions:
    namespace: str = ""
    batch_size: int = 500  # candidates decided per engine call
    default_limit: int = 1000  # results per page when the request gives no page.limit
    max_limit: int = 1000


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
        after = (self._tokens.open(request.token, request.fingerprint)
                 if request.token else None)
        fetch = self._source(request, compiled.action_names())
        limit = request.limit or self.options.default_limit
        found: list[str] = []
        examined = errors = 0
        more = False
        size = min(self.options.batch_size, max(16, 2 * limit))
        while fetch is not None:
            candidates = fetch(after, size)
            if not candidates:
                break
            decisions = self._engine.decide([self._request(request, c) for c in candidates])
            stop: int | None = None
            for i, (candidate, decision) in enumerate(zip(candidates, decisions, strict=True)):
                if decision.allowed:
                    found.append(candidate)
                    if len(found) == limit:
                        stop = i
                        break
                elif decision.outcome == "error":
                    errors += 1
            if stop is not None:
                examined += stop + 1
                after = candidates[stop]
                more = stop < len(candidates) - 1 or bool(fetch(after, 1))
                break
            examined += len(candidates)
            after = candidates[-1]
            if len(candidates) < size:
                break
            size = min(self.options.batch_size, size * 2)
        token = (self._tokens.issue(request.fingerprint, after)
                 if more and after is not None else None)
        return SearchResult(request, self._results(request, found), token, examined, errors,
                            compiled.version)

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
        prefix = self.options.namespace
        cedar_type = f"{prefix}::{searched}" if prefix else searched
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
