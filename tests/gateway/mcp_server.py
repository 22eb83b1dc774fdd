"""A real MCP server for the end-to-end test, on the official SDK's low-level ``Server``.

    python tests/gateway/mcp_server.py --port PORT --log FILE --token TOKEN [--json]

Serves the example tools of ``policies/mcp/tools.json`` over Streamable HTTP at ``/mcp``.
The SDK's ``Tool`` model keeps ``inputSchema`` as is (so ``x-coaz-mapping`` and
``x-authzen-mapping`` reach the client) but drops fields it does not know, such as the SEP's
``"coaz": true`` marker; a server middleware puts the marker back on the listed tools.
Every HTTP request's ``Authorization`` header and every tool call are appended to ``--log``
as JSON lines; requests without ``Bearer TOKEN`` are refused with 401.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import mcp_types as types
import uvicorn
from mcp.server.lowlevel import Server
from starlette.types import ASGIApp, Receive, Scope, Send

TOOLS: list[dict[str, Any]] = json.loads(
    (Path(__file__).resolve().parents[2] / "policies" / "mcp" / "tools.json").read_text())["tools"]
MARKED = {t["name"] for t in TOOLS if t.get("coaz") is True}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--json", action="store_true", help="JSON responses instead of SSE")
    args = parser.parse_args()

    def record(entry: dict[str, Any]) -> None:
        with args.log.open("a") as f:
            f.write(json.dumps(entry) + "\n")

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool.model_validate(t) for t in TOOLS])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        record({"call": params.name, "arguments": params.arguments})
        text = f"{params.name} done: {json.dumps(params.arguments, sort_keys=True)}"
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)])

    async def coaz_marker(ctx: Any, call_next: Any) -> Any:
        result = await call_next(ctx)
        if ctx.method == "tools/list" and isinstance(result, dict):
            for tool in result.get("tools", []):
                if tool.get("name") in MARKED:
                    tool["coaz"] = True
        return result

    server: Server[Any] = Server("example-tools", on_list_tools=list_tools,
                                 on_call_tool=call_tool)
    server.middleware.append(coaz_marker)
    mcp_app = server.streamable_http_app(json_response=args.json)
    expected = f"Bearer {args.token}".encode()

    def guard(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                auth = dict(scope["headers"]).get(b"authorization")
                record({"path": scope["path"], "method": scope["method"],
                        "authorization": auth.decode() if auth else None})
                if auth != expected:
                    await send({"type": "http.response.start", "status": 401, "headers": []})
                    await send({"type": "http.response.body", "body": b""})
                    return
            await app(scope, receive, send)

        return wrapped

    uvicorn.run(guard(mcp_app), host="127.0.0.1", port=args.port, log_level="warning",
                lifespan="on")


if __name__ == "__main__":
    main()
