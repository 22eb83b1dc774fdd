"""Search API (AuthZEN 1.0 section 8): subject, resource and action search with page tokens."""

from pdp.search.request import SearchKind, SearchRequest, parse_search
from pdp.search.searcher import Searcher, SearchOptions, SearchResult
from pdp.search.tokens import PageTokens

__all__ = ["PageTokens", "SearchKind", "SearchOptions", "SearchRequest", "SearchResult",
           "Searcher", "parse_search"]
