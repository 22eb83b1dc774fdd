"""Latency the MCP gateway adds to a ``tools/call`` (docs/spec/coaz.md; MCP Streamable HTTP).

    python benchmarks/bench_gateway.py [--calls 2000] [--sse] [--json OUT]

Starts a real MCP server (the official SDK's low-level ``Server`` over Streamable HTTP with
uvicorn) and ``pdp gateway`` in front of it (in-process engine, ``policies/mcp``, a JWKS file
made here), both on loopback, then times ``tools/call`` requests one at a time over a
keep-alive connection, alternating between the server directly and through the gateway so
both see the same conditions. Scenarios: ``echo`` (the default mapping, one decision) and
``copy_object`` (a binding ``evaluations`` mapping, two decisions). The added latency is the
gateway's percentile minus the direct one. JSON responses by default; ``--sse`` makes the
server answer with ``text/event-stream``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM_TOKEN = "bench-upstream-token"
ISSUER = "https://as.example.com"
SCENARIOS: dict[str, dict[str, Any]] = {
    "echo (default mapping)": {"name": "echo", "arguments": {"text": "hello"}},
    "copy_object (2 evaluations)": {"name": "copy_object", "arguments": {
        "source": "reports/q1.csv", "destination": "reports/q1-copy.csv"}},
}


def serve_upstream(port: int, sse: bool) -> None:
    """The upstream MCP server (run in a subprocess)."""
    import mcp_types as types
    import uvicorn
    from mcp.server.lowlevel import Server

    tools = json.loads((ROOT / "policies" / "mcp" / "tools.json").read_text())["tools"]

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool.model_validate(t) for t in tools])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return types.CallToolResult(content=[types.TextContent(type="text", text="ok")])

    async def coaz_marker(ctx: Any, call_next: Any) -> Any:
        # the SDK's Tool model drops the SEP's "coaz": true marker; put it back
        result = await call_next(ctx)
        if ctx.method == "tools/list" and isinstance(result, dict):
            marked = {t["name"] for t in tools if t.get("coaz") is True}
            for tool in result.get("tools", []):
                if tool.get("name") in marked:
                    tool["coaz"] = True
        return result

    server: Server[Any] = Server("bench", on_list_tools=list_tools, on_call_tool=call_tool)
    server.middleware.append(coaz_marker)
    uvicorn.run(server.streamable_http_app(json_response=not sse), host="127.0.0.1",
                port=port, log_level="warning")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(proc: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"a process exited early: {url}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def _token(work: Path, audience: str) -> str:
    from joserfc import jwt
    from joserfc.jwk import ECKey

    key = ECKey.generate_key("P-256", parameters={"kid": "bench", "alg": "ES256"})
    (work / "jwks.json").write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": audience, "sub": "alice@example.com",
              "client_id": "bench-agent", "iat": now, "exp": now + 3600}
    return jwt.encode({"alg": "ES256", "kid": "bench"}, claims, key)


class Session:
    """One MCP session over one keep-alive HTTP connection."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=1))
        self.headers = {"authorization": f"Bearer {token}", "content-type": "application/json",
                        "accept": "application/json, text/event-stream"}
        self.ids = 0

    def post(self, method: str, params: dict[str, Any] | None = None,
             notify: bool = False) -> httpx.Response:
        body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params or {}}
        if not notify:
            self.ids += 1
            body["id"] = self.ids
        response = self.client.post(self.url, content=json.dumps(body), headers=self.headers)
        if response.status_code >= 400:
            raise SystemExit(f"{method} failed: HTTP {response.status_code} {response.text}")
        return response

    def open(self) -> None:
        response = self.post("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                            "clientInfo": {"name": "bench", "version": "1"}})
        self.headers["mcp-session-id"] = response.headers["mcp-session-id"]
        self.headers["mcp-protocol-version"] = "2025-11-25"
        self.post("notifications/initialized", notify=True)
        self.post("tools/list")

    def timed_call(self, params: dict[str, Any]) -> float:
        start = time.perf_counter()
        response = self.post("tools/call", params)
        elapsed = time.perf_counter() - start
        if b'"error"' in response.content:
            raise SystemExit(f"tools/call failed: {response.text}")
        return elapsed


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(calls: int, sse: bool) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    upstream_port, gateway_port = _free_port(), _free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}/mcp"
    token = _token(work, gateway_url)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        upstream = subprocess.Popen(
            [sys.executable, __file__, "--serve-upstream", str(upstream_port),
             *(["--sse"] if sse else [])], cwd=ROOT)
        procs.append(upstream)
        _wait(upstream, f"http://127.0.0.1:{upstream_port}/")
        env = {**os.environ, "PDP_DECISION_LOG": "off", "PDP_WATCH": "false",
               "PDP_DATA_DIR": str(work / "data"),
               "PDP_GATEWAY_UPSTREAM_TOKEN": UPSTREAM_TOKEN}
        gateway = subprocess.Popen(
            [sys.executable, "-m", "pdp", "gateway",
             "--upstream", f"http://127.0.0.1:{upstream_port}/mcp", "--port", str(gateway_port),
             "--policies", str(ROOT / "policies" / "mcp"), "--jwks-file",
             str(work / "jwks.json"), "--authorization-server", ISSUER,
             "--log-level", "warning"], cwd=ROOT, env=env)
        procs.append(gateway)
        _wait(gateway, f"http://127.0.0.1:{gateway_port}/health")

        direct = Session(f"http://127.0.0.1:{upstream_port}/mcp", UPSTREAM_TOKEN)
        through = Session(gateway_url, token)
        direct.open()
        through.open()
        results: dict[str, Any] = {}
        for label, params in SCENARIOS.items():
            for _ in range(min(200, calls)):  # warm-up: connections, caches, JIT-free paths
                direct.timed_call(params)
                through.timed_call(params)
            d: list[float] = []
            g: list[float] = []
            for _ in range(calls):
                d.append(direct.timed_call(params))
                g.append(through.timed_call(params))
            row = {"calls": calls}
            for name, values in (("direct", d), ("gateway", g)):
                row[f"{name}_p50_ms"] = _percentile(values, 0.50) * 1000
                row[f"{name}_p99_ms"] = _percentile(values, 0.99) * 1000
            row["added_p50_ms"] = row["gateway_p50_ms"] - row["direct_p50_ms"]
            row["added_p99_ms"] = row["gateway_p99_ms"] - row["direct_p99_ms"]
            row["added_median_of_pairs_ms"] = statistics.median(
                (b - a) * 1000 for a, b in zip(d, g, strict=True))
            results[label] = row
        return {"responses": "sse" if sse else "json", "scenarios": results}
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _print(report: dict[str, Any]) -> None:
    print(f"gateway added latency per tools/call ({report['responses']} responses, loopback)")
    header = (f"{'scenario':<30} {'direct p50':>11} {'direct p99':>11} {'gateway p50':>12} "
              f"{'gateway p99':>12} {'added p50':>10} {'added p99':>10}")
    print(header)
    print("-" * len(header))
    for label, row in report["scenarios"].items():
        print(f"{label:<30} {row['direct_p50_ms']:>9.3f}ms {row['direct_p99_ms']:>9.3f}ms "
              f"{row['gateway_p50_ms']:>10.3f}ms {row['gateway_p99_ms']:>10.3f}ms "
              f"{row['added_p50_ms']:>8.3f}ms {row['added_p99_ms']:>8.3f}ms")
    print("target: added p50 <= 1 ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per scenario")
    parser.add_argument("--sse", action="store_true", help="the server answers with SSE")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results here")
    parser.add_argument("--serve-upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_upstream is not None:
        serve_upstream(args.serve_upstream, args.sse)
        return 0
    report = run(args.calls, args.sse)
    _print(report)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
