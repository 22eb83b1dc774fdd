"""The AuthZEN 1.0 wire (docs/spec/authzen-1.0.md): request/response types, parsing, batch
defaults and semantics."""

from pdp.authzen.body import check_content_type, load_json, nesting_depth, parse_json_body
from pdp.authzen.evaluation import parse_evaluation, read_evaluation
from pdp.authzen.evaluations import (
    EvaluationsRequest,
    Semantic,
    apply_semantic,
    item_error,
    parse_evaluations,
)
from pdp.authzen.metadata import build_metadata
from pdp.authzen.model import Action, Decision, Entity, EvaluationRequest

__all__ = [
    "Action",
    "Decision",
    "Entity",
    "EvaluationRequest",
    "EvaluationsRequest",
    "Semantic",
    "apply_semantic",
    "build_metadata",
    "check_content_type",
    "item_error",
    "nesting_depth",
    "parse_evaluation",
    "parse_evaluations",
    "parse_json_body",
    "load_json",
    "read_evaluation",
]
