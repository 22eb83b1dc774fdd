"""An OpenID AuthZEN 1.0 Policy Decision Point backed by Cedar, with COAZ support for MCP."""

from pdp.authzen import Action, Decision, Entity, EvaluationRequest
from pdp.errors import PDPError
from pdp.service import PDPService
from pdp.settings import Settings

__all__ = ["Action", "Decision", "Entity", "EvaluationRequest", "PDPError", "PDPService",
           "Settings", "__version__"]

__version__ = "0.1.0"
