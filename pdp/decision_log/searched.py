"""What the decision log reads of a search answer: declared here, so that the log knows nothing
of the search package (both sit in one layer, above the engine); the search's own result
(:class:`pdp.search.searcher.SearchResult`) has this shape."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, Protocol

from pdp.authzen.model import Action, Entity

__all__ = ["SearchedRequest", "Searched"]


class SearchedRequest(Protocol):
    @property
    def kind(self) -> Enum: ...  # subject, resource or action (its value names the endpoint)

    @property
    def subject(self) -> Entity: ...

    @property
    def action(self) -> Action | None: ...

    @property
    def resource(self) -> Entity: ...

    @property
    def context(self) -> Mapping[str, Any] | None: ...


class Searched(Protocol):
    """One search answer: the request, the page of results, failures and the set version."""

    @property
    def request(self) -> SearchedRequest: ...

    @property
    def results(self) -> Sequence[Mapping[str, str]]: ...

    @property
    def errors(self) -> int: ...  # candidates whose decision failed (denied)

    @property
    def policy_version(self) -> str: ...
