"""The examples of docs/spec/coaz.md, verbatim, and the binding example ``transfer_funds``."""

from __future__ import annotations

import json
from typing import Any

# docs/spec/coaz.md, "Dialect 1": the example tool.
GET_CUSTOMER_TOOL = """
{
  "name": "get_customer",
  "coaz": true,
  "description": "Get customer details",
  "inputSchema": {
    "type": "object",
    "properties": {
      "id":   {"type": "string"},
      "case": {"type": "string"}
    },
    "required": ["id"],
    "x-coaz-mapping": {
      "subject":  {"type": "user", "id": "$token['sub']"},
      "resource": {"type": "customer", "id": "$properties['id']"},
      "context":  {"agent": "$token['client_id']", "case": "$properties['case']"}
    }
  }
}
"""

# docs/spec/coaz.md, "Dialect 1": the call, the token claims and the request it becomes.
GET_CUSTOMER_CALL = """
{"name": "get_customer", "arguments": {"id": "cust-12345", "case": "case-67890"}}
"""
GET_CUSTOMER_CLAIMS = """
{"sub": "alice@example.com", "client_id": "agent-app-1"}
"""
GET_CUSTOMER_REQUEST = """
{"subject": {"type": "user", "id": "alice@example.com"},
 "action": {"name": "get_customer"},
 "resource": {"type": "customer", "id": "cust-12345"},
 "context": {"agent": "agent-app-1", "case": "case-67890"}}
"""

# docs/spec/coaz.md, "Dialect 2": two decisions for one call.
COPY_OBJECT_TOOL = """
{
  "name": "copy_object",
  "inputSchema": {
    "type": "object",
    "properties": {"source": {"type": "string"}, "destination": {"type": "string"}},
    "required": ["source", "destination"],
    "x-authzen-mapping": {
      "evaluations": {
        "subject": {"type": "identity", "id": "$token.sub"},
        "context": {"agent": "$token.?client_id"},
        "evaluations": [
          {"action": {"name": "read"},  "resource": {"type": "storage_object", "id": "$params.arguments.source"}},
          {"action": {"name": "write"}, "resource": {"type": "storage_object", "id": "$params.arguments.destination"}}
        ]
      }
    }
  }
}
"""  # noqa: E501 (verbatim from the spec)

# The binding's conditional example: the risk level of a transfer goes into the context.
TRANSFER_FUNDS_TOOL = """
{
  "name": "transfer_funds",
  "description": "Transfer money between two accounts",
  "inputSchema": {
    "type": "object",
    "properties": {
      "from_account": {"type": "string"},
      "to_account": {"type": "string"},
      "amount": {"type": "number", "exclusiveMinimum": 0},
      "currency": {"type": "string"}
    },
    "required": ["from_account", "to_account", "amount"],
    "x-authzen-mapping": {
      "evaluation": {
        "subject": {"type": "identity", "id": "$token.sub"},
        "action": {"name": "transfer"},
        "resource": {"type": "account", "id": "$params.arguments.from_account"},
        "context": {
          "agent": "$token.?client_id",
          "amount": "$params.arguments.amount",
          "currency": "$params.arguments.?currency",
          "to_account": "$params.arguments.to_account",
          "risk": "$params.arguments.amount > 10000 ? 'high' : 'standard'"
        }
      }
    }
  }
}
"""


def load(text: str) -> Any:
    return json.loads(text)


def call(params: dict[str, Any], *, method: str = "tools/call", id_: int = 1) -> dict[str, Any]:
    """A JSON-RPC request carrying ``params``."""
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": params}
