"""PDP metadata (AuthZEN 1.0 section 9): ``GET /.well-known/authzen-configuration``."""

from __future__ import annotations

from typing import Any

__all__ = ["EVALUATION_PATH", "EVALUATIONS_PATH", "SEARCH_SUBJECT_PATH", "SEARCH_RESOURCE_PATH",
           "SEARCH_ACTION_PATH", "WELL_KNOWN_PATH", "build_metadata"]

WELL_KNOWN_PATH = "/.well-known/authzen-configuration"
EVALUATION_PATH = "/access/v1/evaluation"
EVALUATIONS_PATH = "/access/v1/evaluations"
SEARCH_SUBJECT_PATH = "/access/v1/search/subject"
SEARCH_RESOURCE_PATH = "/access/v1/search/resource"
SEARCH_ACTION_PATH = "/access/v1/search/action"


def build_metadata(base_url: str, *, search: bool, tenant: str | None = None,
                   ) -> dict[str, Any]:
    """Absolute endpoint URLs under ``base_url``; fields with no value are omitted.

    For a ``tenant`` (served at ``/.well-known/authzen-configuration/{tenant}``, section
    9.1.3) the PDP identifier is ``base_url/{tenant}``, the URL the metadata path was built
    from; the endpoints are the shared ones."""
    base = base_url.rstrip("/")
    doc: dict[str, Any] = {
        "policy_decision_point": f"{base}/{tenant}" if tenant else base,
        "access_evaluation_endpoint": base + EVALUATION_PATH,
        "access_evaluations_endpoint": base + EVALUATIONS_PATH,
    }
    if search:
        doc["search_subject_endpoint"] = base + SEARCH_SUBJECT_PATH
        doc["search_resource_endpoint"] = base + SEARCH_RESOURCE_PATH
        doc["search_action_endpoint"] = base + SEARCH_ACTION_PATH
    return doc
