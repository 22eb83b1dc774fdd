"""The PDP's one exception tree.

Every error raised by the core carries the wire ``code`` it is reported under, the HTTP
``status`` an adapter answers with, and (for COAZ) the JSON-RPC code. Errors from cedarpy,
the database and third-party libraries are translated into this tree where they are caught
and never leak to callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "PDPError",
    "RequestError",
    "UnsupportedContentType",
    "MalformedJSON",
    "EmptyBody",
    "MissingField",
    "InvalidField",
    "NestingTooDeep",
    "DuplicateKey",
    "BodyTooLarge",
    "TooManyEvaluations",
    "RequestTimeout",
    "ProcessingTimeout",
    "RateLimited",
    "InvalidPageToken",
    "AuthenticationFailed",
    "InsufficientScope",
    "ConfigurationError",
    "InvalidSettings",
    "HostNotAllowed",
    "NotExposed",
    "AdminDisabled",
    "NotFound",
    "MethodNotAllowed",
    "TranslationError",
    "SchemaViolation",
    "EvaluationError",
    "PolicyLoadError",
    "PolicyDiagnostic",
    "EntityError",
    "CedarInputError",
    "LinkError",
    "StoreUnavailable",
    "MappingError",
    "TokenError",
    "UpstreamError",
]


class PDPError(Exception):
    """Base of every error the PDP raises on purpose."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    jsonrpc_code: ClassVar[int] = -32603

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


# -- client input -------------------------------------------------------------------------


class RequestError(PDPError):
    """The request as a whole cannot be processed (HTTP 400)."""

    code = "invalid_request"
    status = 400
    jsonrpc_code = -32602


class UnsupportedContentType(RequestError):
    code = "unsupported_content_type"


class MalformedJSON(RequestError):
    code = "malformed_json"


class EmptyBody(RequestError):
    code = "empty_body"


class MissingField(RequestError):
    code = "missing_field"


class InvalidField(RequestError):
    code = "invalid_field"


class NestingTooDeep(RequestError):
    code = "nesting_too_deep"


class DuplicateKey(RequestError):
    """A JSON object in the body names the same key twice (I-JSON, RFC 7493, forbids it:
    a PEP reading the first and the PDP the last would decide on different requests)."""

    code = "duplicate_key"


class InvalidPageToken(RequestError):
    code = "invalid_page_token"


class BodyTooLarge(PDPError):
    code = "body_too_large"
    status = 413
    jsonrpc_code = -32602


class TooManyEvaluations(PDPError):
    """A batch longer than PDP_MAX_BATCH: split it (413, like a body over the size limit)."""

    code = "too_many_evaluations"
    status = 413
    jsonrpc_code = -32602


class RequestTimeout(PDPError):
    """The client did not send its whole body within PDP_REQUEST_TIMEOUT."""

    code = "request_timeout"
    status = 408

    @classmethod
    def after(cls, seconds: float) -> RequestTimeout:
        return cls(f"the request body did not arrive within {seconds:g} s", field="body")


class ProcessingTimeout(PDPError):
    """The request was not answered within PDP_REQUEST_TIMEOUT; the PEP denies and retries."""

    code = "timeout"
    status = 503
    retry_after = 1


class RateLimited(PDPError):
    """The client sent more than PDP_RATE_LIMIT requests per second (beyond the burst)."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthenticationFailed(PDPError):
    """The caller did not authenticate (AuthZEN 1.0 section 10: 401 with ``WWW-Authenticate``).

    ``challenge`` is the ``WWW-Authenticate`` value (RFC 6750 section 3); ``reason`` says why,
    for the logs only (never the credential itself).
    """

    code = "unauthenticated"
    status = 401

    def __init__(self, message: str, *, challenge: str | None = None,
                 reason: str | None = None) -> None:
        super().__init__(message)
        self.challenge = challenge
        self.reason = reason or message


class InsufficientScope(PDPError):
    """A valid bearer token lacks the required scope (RFC 6750 section 3.1: 403)."""

    code = "insufficient_scope"
    status = 403

    def __init__(self, message: str, *, challenge: str | None = None) -> None:
        super().__init__(message)
        self.challenge = challenge


class ConfigurationError(PDPError):
    """The settings are unusable or unsafe; the PDP refuses to start."""

    code = "configuration_error"
    status = 500


class InvalidSettings(ConfigurationError, ValueError):
    """A settings model refused its values (``pdp.settings.SettingsModel``); the message
    names each refused field and why. Also a ValueError, as validation errors are."""

    code = "invalid_settings"


class HostNotAllowed(PDPError):
    """The ``Host`` header names none of ``PDP_ALLOWED_HOSTS`` (DNS rebinding)."""

    code = "host_not_allowed"
    status = 400


class NotExposed(PDPError):
    """A request reached an unauthenticated PDP through a non-loopback address."""

    code = "not_exposed"
    status = 403


class AdminDisabled(PDPError):
    code = "admin_disabled"
    status = 404


class NotFound(PDPError):
    code = "not_found"
    status = 404


class MethodNotAllowed(PDPError):
    """The path exists, not with this method (the response's ``Allow`` header lists them)."""

    code = "method_not_allowed"
    status = 405


# -- decisions ------------------------------------------------------------------------------


class TranslationError(PDPError):
    """An AuthZEN value cannot be expressed in Cedar: the decision is a deny with this reason."""

    code = "translation_error"
    status = 400


class SchemaViolation(TranslationError):
    """The request names an action, an entity type or a context the schema does not declare
    (or declares otherwise): the decision is a deny with this reason, counted as ``invalid``."""

    code = "not_in_schema"


class EvaluationError(PDPError):
    """The engine failed on the way to a decision: always a deny."""

    code = "evaluation_error"
    status = 500


# -- policies -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyDiagnostic:
    """One problem in a policy set, located as precisely as the sources allow."""

    file: str
    message: str
    line: int | None = None
    column: int | None = None
    policy: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        subject = f" policy {self.policy}:" if self.policy else ""
        return f"{where}:{subject} {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in {
            "file": self.file, "line": self.line, "column": self.column,
            "policy": self.policy, "message": self.message,
        }.items() if v is not None}


class PolicyLoadError(PDPError):
    """A policy set failed to load; ``diagnostics`` says where and why."""

    code = "invalid_policy_set"
    status = 422

    def __init__(self, diagnostics: Sequence[PolicyDiagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics) or "invalid policy set")

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": "the policy set is invalid",
                "diagnostics": [d.to_dict() for d in self.diagnostics]}


# -- entity store ---------------------------------------------------------------------------


class EntityError(PDPError):
    """An entity is malformed or does not conform to the schema."""

    code = "invalid_entity"
    status = 400


class CedarInputError(PDPError):
    """Cedar rejects the policies, entities or request given to ``pdp.cedar``; the message
    is Cedar's."""

    code = "invalid_cedar_input"
    status = 400


class LinkError(PDPError):
    """A template link names no template, fills its slots wrongly or names an entity of a
    type the schema does not allow."""

    code = "invalid_link"
    status = 400


class StoreUnavailable(PDPError):
    """The entity store or a database cannot be reached; the PEP must deny and retry."""

    code = "store_unavailable"
    status = 503
    retry_after = 1


# -- COAZ -----------------------------------------------------------------------------------


class MappingError(PDPError):
    """A COAZ mapping is malformed or cannot be resolved for a call."""

    code = "mapping_error"
    status = 400
    jsonrpc_code = -32602


class TokenError(PDPError):
    """An access token is invalid; details are for logs, never for the client."""

    code = "invalid_token"
    status = 401


class UpstreamError(PDPError):
    """A remote PDP or upstream server failed or answered something invalid."""

    code = "upstream_error"
    status = 502
    jsonrpc_code = -32603
