"""The cost of the decision log on ``/access/v1/evaluation``: requests/s with it on and off.

Two PDPs serve ``policies/search``, identical but for the decision log (on: the background
writer inserting into a SQLite file; off: none), measured in one run, rounds alternating
off/on, the median round counting. The requests cycle through 2,000 distinct evaluations (so
the decision cache hits, which makes a decision as cheap as it gets and the log's share as
large as it gets). Two ways, both printed:

* ``http``: real ``pdp serve`` processes (uvicorn), driven over keep-alive HTTP/1.1
  connections by a minimal client (prebuilt requests, no HTTP library), so that the server, not
  the client, is the bottleneck. This is what a PEP sees. Target: the log costs <= 10%.
* ``asgi``: the two applications in this process, each request driven straight through ASGI
  (no transport at all): the strictest view, a request costs only tens of microseconds here.

The log's own CPU is shown too: per request on the serving thread (asgi), and per decision on
the log's threads (spool and ingest: segment file and SQLite insert, indexes included). On a
machine without a spare core that time is taken from the server.

    python -m benchmarks.bench_decision_log [--requests N] [--rounds N] [--log-url URL]
                                            [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import pdp  # noqa: F401
except ModuleNotFoundError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from pdp.http import create_app
from pdp.service import PDPService
from pdp.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TARGET_COST_PCT = 10.0
USERS = ["alice", "bob", "carol", "dan", "erin", "felix"]
ACTIONS = ["view", "edit", "delete"]
PATH = "/access/v1/evaluation"


def bodies(count: int) -> list[bytes]:
    out = []
    for i in range(count):
        body = {"subject": {"type": "user", "id": USERS[i % 6]},
                "action": {"name": ACTIONS[(i // 6) % 3]},
                "resource": {"type": "record", "id": str(101 + (i // 18) % 20)},
                "context": {"n": i}}
        out.append(json.dumps(body).encode())
    return out


# -- in process, through ASGI -----------------------------------------------------------------


async def drive(app: Any, payloads: list[bytes], requests: int,
                headers: list[tuple[bytes, bytes]] | None = None) -> tuple[float, float]:
    """Requests per second through the ASGI app, called directly, and the CPU time of this
    thread per request (µs). ``headers`` are added to every request."""
    extra = headers or []
    async def call(body: bytes, n: int) -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": PATH,
                 "raw_path": PATH.encode(), "query_string": b"",
                 "root_path": "", "server": ("bench", 80), "client": ("bench", 1),
                 "headers": [(b"content-type", b"application/json"),
                             (b"content-length", str(len(body)).encode()),
                             (b"x-request-id", f"bench-{n}".encode()), *extra]}
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 0

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        if status != 200:
            raise RuntimeError(f"request failed with {status}")

    count = len(payloads)
    started, cpu = time.perf_counter(), time.thread_time()
    for n in range(requests):
        await call(payloads[n % count], n)
    elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu
    return requests / elapsed, cpu / requests * 1e6


def thread_cpu(native_id: int | None) -> float:
    """CPU seconds a thread of this process has used (Linux; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def service(data_dir: Path, log: bool, log_url: str | None = None) -> PDPService:
    settings = Settings(policies=ROOT / "policies" / "search", data_dir=data_dir,
                        decision_log="on" if log else "off", decision_log_url=log_url,
                        watch=False)
    return PDPService.from_settings(settings)


def run_asgi(tmp: Path, payloads: list[bytes], requests: int, rounds: int,
             log_url: str | None) -> dict[str, Any]:
    off_service = service(tmp / "asgi-off", log=False)
    on_service = service(tmp / "asgi-on", log=True, log_url=log_url)
    on_service.start()
    off_app, on_app = create_app(off_service), create_app(on_service)
    rates: dict[str, list[float]] = {"off": [], "on": []}
    cpus: dict[str, list[float]] = {"off": [], "on": []}
    log = on_service.decision_log
    assert log is not None
    writers = list(getattr(log, "_threads", []))  # the spool and ingest threads
    try:
        asyncio.run(drive(off_app, payloads, 2_000))  # warm both: caches, code paths
        asyncio.run(drive(on_app, payloads, 2_000))
        log.flush(timeout=60)
        written_before = log.stats().written
        writer_cpu = sum(thread_cpu(w.native_id) for w in writers)
        for _ in range(rounds):
            for name, app in (("off", off_app), ("on", on_app)):
                rate, cpu = asyncio.run(drive(app, payloads, requests))
                rates[name].append(rate)
                cpus[name].append(cpu)
        flushed = log.flush(timeout=60)
        stats = log.stats()
        writer_cpu = sum(thread_cpu(w.native_id) for w in writers) - writer_cpu
    finally:
        on_service.close()
        off_service.close()
    return {"off": statistics.median(rates["off"]), "on": statistics.median(rates["on"]),
            "server_cpu_us_off": statistics.median(cpus["off"]),
            "server_cpu_us_on": statistics.median(cpus["on"]),
            "writer_cpu_us": writer_cpu / max(1, stats.written - written_before) * 1e6,
            "written": stats.written, "dropped": stats.dropped, "flushed": flushed}


# -- over HTTP, real servers --------------------------------------------------------------------


def start(tmp: Path, log: bool, log_url: str | None) -> tuple[subprocess.Popen[bytes], int]:
    with __import__("socket").socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = {**os.environ, "PDP_DECISION_LOG": "on" if log else "off", "PDP_WATCH": "false",
           "PDP_DATA_DIR": str(tmp / ("http-on" if log else "http-off")),
           "PYTHONPATH": str(ROOT), **({"PDP_DECISION_LOG_URL": log_url} if log_url else {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pdp", "serve", "--policies", str(ROOT / "policies" / "search"),
         "--port", str(port), "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("pdp serve did not start")


async def hammer(port: int, payloads: list[bytes], requests: int, connections: int) -> float:
    """Requests per second over keep-alive connections (one request in flight on each)."""
    prebuilt = [(f"POST {PATH} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(b)}\r\n\r\n").encode() + b for b in payloads]
    per_connection = requests // connections

    async def worker(offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for n in range(per_connection):
                writer.write(prebuilt[(offset + n) % len(prebuilt)])
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i * 97) for i in range(connections)))
    return per_connection * connections / (time.perf_counter() - started)


def run_http(tmp: Path, payloads: list[bytes], requests: int, rounds: int,
             connections: int, log_url: str | None) -> dict[str, Any]:
    servers = {name: start(tmp, log=name == "on", log_url=log_url) for name in ("off", "on")}
    rates: dict[str, list[float]] = {"off": [], "on": []}
    try:
        for _, port in servers.values():
            asyncio.run(hammer(port, payloads, 2_000, connections))  # warm up
        for _ in range(rounds):
            for name, (_, port) in servers.items():
                rates[name].append(asyncio.run(hammer(port, payloads, requests, connections)))
        status = httpx.get(f"http://127.0.0.1:{servers['on'][1]}/status", timeout=10).json()
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=30)
    return {"off": statistics.median(rates["off"]), "on": statistics.median(rates["on"]),
            "dropped": status["decision_log"]["dropped"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=20_000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8, help="HTTP connections")
    parser.add_argument("--log-url", help="decision log database (default: a SQLite file)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results here")
    args = parser.parse_args(argv)

    payloads = bodies(2_000)
    with tempfile.TemporaryDirectory(prefix="pdp-bench-log-") as tmp:
        http = run_http(Path(tmp), payloads, args.requests, args.rounds, args.connections,
                        args.log_url)
        asgi = run_asgi(Path(tmp), payloads, args.requests, args.rounds, args.log_url)

    def cost(r: dict[str, Any]) -> float:
        return float(100 * (r["off"] - r["on"]) / r["off"])

    row: Callable[..., str] = "{:<6}{:>14,.0f}{:>14,.0f}{:>9.1f}%".format
    print(f"{'via':<6}{'log off req/s':>14}{'log on req/s':>14}{'cost':>10}")
    print(row("http", http["off"], http["on"], cost(http)))
    print(row("asgi", asgi["off"], asgi["on"], cost(asgi)))
    print(f"asgi: serving-thread CPU {asgi['server_cpu_us_off']:.1f} -> "
          f"{asgi['server_cpu_us_on']:.1f} µs/request; log's threads "
          f"{asgi['writer_cpu_us']:.1f} µs CPU per decision; written {asgi['written']:,}, "
          f"dropped {asgi['dropped'] + http['dropped']:,}, all flushed: "
          f"{'yes' if asgi['flushed'] else 'no'}")
    met = cost(http) <= TARGET_COST_PCT
    print(f"target: the log costs <= {TARGET_COST_PCT:g}% of requests/s over HTTP: "
          f"{'met' if met else 'NOT met'}")
    if args.json is not None:
        args.json.write_text(json.dumps({
            "benchmark": "decision_log", "target_cost_pct": TARGET_COST_PCT,
            "target_met": met, "http": {**http, "cost_pct": round(cost(http), 1)},
            "asgi": {**asgi, "cost_pct": round(cost(asgi), 1)}, "rounds": args.rounds,
            "requests": args.requests, "python": platform.python_version(),
            "machine": platform.machine(), "cpus": os.cpu_count()}, indent=2) + "\n",
            encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
