"""Pydantic models of the AuthZEN wire, used to document the lean routes in OpenAPI.

The routes parse bodies with :mod:`pdp.authzen` (faster, with field-precise errors); these
models describe the same shapes for readers of ``/docs``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SubjectModel", "ResourceModel", "ActionModel", "EvaluationModel",
           "EvaluationsModel", "DecisionModel", "EvaluationsResponseModel", "ErrorModel",
           "MetadataModel"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class SubjectModel(_Open):
    type: str
    id: str
    properties: dict[str, Any] | None = None


class ResourceModel(_Open):
    type: str
    id: str
    properties: dict[str, Any] | None = None


class ActionModel(_Open):
    name: str
    properties: dict[str, Any] | None = None


class EvaluationModel(_Open):
    subject: SubjectModel
    action: ActionModel
    resource: ResourceModel
    context: dict[str, Any] | None = None


class _Item(_Open):
    subject: SubjectModel | None = None
    action: ActionModel | None = None
    resource: ResourceModel | None = None
    context: dict[str, Any] | None = None


class _Options(_Open):
    evaluations_semantic: Literal[
        "execute_all", "deny_on_first_deny", "permit_on_first_permit"] = "execute_all"


class EvaluationsModel(_Item):
    evaluations: list[_Item] | None = None
    options: _Options | None = None


class DecisionModel(BaseModel):
    decision: bool
    context: dict[str, Any] | None = Field(
        default=None, description="Reasons (when asked for with X-PDP-Explain) or an error.")


class EvaluationsResponseModel(BaseModel):
    evaluations: list[DecisionModel]


class ErrorModel(BaseModel):
    error: str
    message: str
    field: str | None = None


class MetadataModel(BaseModel):
    policy_decision_point: str
    access_evaluation_endpoint: str
    access_evaluations_endpoint: str | None = None
    search_subject_endpoint: str | None = None
    search_resource_endpoint: str | None = None
    search_action_endpoint: str | None = None
