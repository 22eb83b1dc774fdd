"""HTTP throughput and latency of ``pdp serve`` under ``wrk``, on one pinned core.

The server runs ``pdp serve`` with one worker, pinned to CPU 0 (``taskset -c 0``); ``wrk``
runs on CPU 1 with one thread. Every comparison is within one server process, so the
options (uvloop, httptools, middleware, one worker) are the same on both sides:

* ``/access/v1/evaluation`` against ``POST /bench/noop`` (``PDP_BENCH_NOOP=on``: reads the
  body, answers a constant decision), requests/s and latency percentiles, decision cache off
  and on;
* ``/access/v1/evaluations`` with 100 items (one subject, as the API's defaults invite)
  against the same 100 requests sent one by one to ``/access/v1/evaluation``: decisions/s;
* the same comparison on the AuthZEN Todo scenario (``policies/todo``, its 40 interop
  requests);
* p99 latency while the 10,000-policy set is reloaded back to back (``POST /admin/reload``
  after each edit), against the p99 of the same load without reloads. This run uses 4
  connections: with 32, latency is mostly the time spent queued behind other requests.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks.workload import Population, requests, wire, write_policy_set

ROOT = Path(__file__).resolve().parent.parent
WRK_DIR = Path(__file__).resolve().parent / "wrk"
ADMIN_TOKEN = "bench-admin-token"
# The Todo interop requests (the same ones the Cerbos comparison uses), when present.
TODO_BODIES = ROOT.parent / "shared" / "peers" / "cerbos" / "todo-eval-bodies.jsonl"
SERVER_CPU, CLIENT_CPU = "0", "1"


@dataclass
class WrkResult:
    name: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int
    connections: int
    duration_s: float
    decisions_per_request: int = 1

    @property
    def decisions_per_s(self) -> float:
        return self.requests_per_s * self.decisions_per_request

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "decisions_per_s": round(self.decisions_per_s, 1)}


def have_wrk() -> bool:
    return shutil.which("wrk") is not None and shutil.which("taskset") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(policies: Path, data_dir: Path, *, cache: str = "off",
           extra_env: dict[str, str] | None = None) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "PDP_BENCH_NOOP": "on", "PDP_DECISION_LOG": "off", "PDP_ENTITY_STORE": "memory",
           "PDP_WATCH": "false", "PDP_DATA_DIR": str(data_dir), "PDP_DECISION_CACHE": cache,
           "PDP_ADMIN_TOKEN": ADMIN_TOKEN, **(extra_env or {})}
    log = open(data_dir / f"server-{port}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, sys.executable, "-m", "pdp", "serve", "--policies",
         str(policies), "--port", str(port), "--log-level", "warning", "--workers", "1"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"pdp serve exited; see {log.name}")
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("pdp serve did not start in 120 s")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if m is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(name: str, url: str, *, script: str, env: dict[str, str], duration_s: float,
        connections: int = 32, warmup_s: float = 1.0, decisions_per_request: int = 1,
        ) -> WrkResult:
    def run(seconds: float) -> str:
        cmd = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{connections}",
               f"-d{max(1, round(seconds))}s", "--latency", "-s", str(WRK_DIR / script), url]
        done = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True,
                              timeout=seconds + 60, check=True)
        return done.stdout

    if warmup_s > 0:
        run(warmup_s)
    out = run(duration_s)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\n\s+50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\n\s+99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", out)
    errors = sum(int(g) for g in socket_errors.groups()) if socket_errors else 0
    return WrkResult(name, rps, p50, p99, int(non_2xx.group(1)) if non_2xx else 0, errors,
                     connections, duration_s, decisions_per_request)


def alternating(runs: Sequence[tuple[str, str, str, dict[str, str], int, int]], *,
                duration_s: float, rounds: int = 3) -> list[WrkResult]:
    """Run each (name, url, script, env, decisions per request, connections) for
    ``duration_s`` in all,
    taking turns in ``rounds`` rounds, so that every run sees the same machine (other load
    comes and goes); each figure is the median over the rounds."""
    taken: dict[str, list[WrkResult]] = {name: [] for name, *_ in runs}
    for n in range(rounds):
        for name, url, script, env, per_request, connections in runs:
            taken[name].append(wrk(name, url, script=script, env=env,
                                   duration_s=duration_s / rounds, connections=connections,
                                   warmup_s=1.0 if n == 0 else 0.0,
                                   decisions_per_request=per_request))
    out = []
    for name, results in taken.items():
        first = results[0]
        out.append(WrkResult(
            name, statistics.median(r.requests_per_s for r in results),
            statistics.median(r.p50_ms for r in results),
            statistics.median(r.p99_ms for r in results),
            sum(r.non_2xx for r in results), sum(r.errors for r in results),
            first.connections, duration_s, first.decisions_per_request))
    return out


def todo_bodies() -> list[Any]:
    """The Todo interop requests (one of them when the shared peers are absent)."""
    if not TODO_BODIES.is_file():
        return [{"subject": {"type": "user", "id": "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2Zj"
                                                   "VhNTEwMGQSBWxvY2Fs"},
                 "action": {"name": "can_read_todos"}, "resource": {"type": "todo", "id": "1"}}]
    return [orjson.loads(line) for line in TODO_BODIES.read_bytes().splitlines()
            if line.strip()]


def _bodies(path: Path, bodies: Sequence[Any]) -> Path:
    path.write_bytes(b"\n".join(orjson.dumps(b) for b in bodies) + b"\n")
    return path


def run_http(*, policies: int, entities: int, reload_policies: int, duration_s: float,
             log: Callable[[str], None]) -> dict[str, Any]:
    results: list[WrkResult] = []
    notes: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pdp-bench-http-") as tmp_name:
        tmp = Path(tmp_name)
        population = Population.of(entities)
        directory = write_policy_set(tmp / "set", policies, population)
        pool = [wire(r) for r in requests(population, 2000, seed=5)]
        rotate = {"BODIES": str(_bodies(tmp / "bodies.jsonl", pool))}
        # A batch as PEPs send them: one subject, 100 (action, resource) pairs; the same 100
        # requests one by one for comparison.
        subject = pool[0]["subject"]
        hundred = [{**item, "subject": subject} for item in pool[:100]]
        singles = {"BODIES": str(_bodies(tmp / "hundred.jsonl", hundred))}
        batch_file = tmp / "batch100.json"
        batch_file.write_bytes(orjson.dumps({
            "subject": subject,
            "evaluations": [{k: v for k, v in item.items() if k != "subject"}
                            for item in hundred]}))
        batch = {"BODY": str(batch_file)}

        for cache in ("off", "on"):
            log(f"http: {policies:,} policies, {entities:,} entities, decision cache {cache}")
            with server(directory, tmp, cache=cache) as base:
                evaluation = base + "/access/v1/evaluation"
                if cache == "off":
                    # 4 connections for the batch: a 100-item batch takes milliseconds, and
                    # 32 of them queued would only measure waiting
                    results.extend(alternating([
                        ("noop", base + "/bench/noop", "rotate.lua", rotate, 1, 32),
                        ("evaluation, cache off", evaluation, "rotate.lua", rotate, 1, 32),
                        ("100 single evaluations", evaluation, "rotate.lua", singles, 1, 32),
                        ("evaluations, batch of 100", base + "/access/v1/evaluations",
                         "post.lua", batch, 100, 4),
                    ], duration_s=duration_s * 3))
                else:
                    results.append(wrk("evaluation, cache on", evaluation,
                                       script="rotate.lua", env=rotate,
                                       duration_s=duration_s))

        log("http: the AuthZEN Todo scenario (policies/todo), decision cache off")
        todo = {"BODIES": str(_bodies(tmp / "todo.jsonl", todo_bodies()))}
        with server(ROOT / "policies" / "todo", tmp, cache="off") as base:
            results.extend(alternating([
                ("todo: noop", base + "/bench/noop", "rotate.lua", todo, 1, 32),
                ("todo: evaluation, cache off", base + "/access/v1/evaluation", "rotate.lua",
                 todo, 1, 32)], duration_s=duration_s * 2))
        log("http: the Todo scenario with PDP_EVALUATOR=cedarpy")
        with server(ROOT / "policies" / "todo", tmp, cache="off",
                    extra_env={"PDP_EVALUATOR": "cedarpy"}) as base:
            results.extend(alternating([
                ("todo (cedarpy): noop", base + "/bench/noop", "rotate.lua", todo, 1, 32),
                ("todo (cedarpy): evaluation, cache off", base + "/access/v1/evaluation",
                 "rotate.lua", todo, 1, 32)], duration_s=duration_s * 2))

        log(f"http: reload of a {reload_policies:,}-policy set under load")
        reload_dir = write_policy_set(tmp / "reload", reload_policies, population)
        with server(reload_dir, tmp, cache="off") as base:
            evaluation = base + "/access/v1/evaluation"
            results.append(wrk("evaluation, 4 connections, no reload", evaluation,
                               script="rotate.lua", env=rotate, duration_s=duration_s * 2,
                               connections=4))
            reloads, reload_seconds = _reloading(reload_dir, base, lambda: results.append(
                wrk("evaluation, 4 connections, reloading", evaluation, script="rotate.lua",
                    env=rotate, duration_s=duration_s * 2, connections=4, warmup_s=0)))
            notes["reloads_during_run"] = reloads
            notes["reload_seconds"] = reload_seconds
    return {"runs": [r.to_dict() for r in results], "notes": notes,
            "policies": policies, "entities": entities, "reload_policies": reload_policies}


def _reloading(directory: Path, base: str, during: Callable[[], None]) -> tuple[int, list[float]]:
    """Run ``during`` while editing the policy set and reloading it back to back."""
    policy_file = directory / "policies.cedar"
    original = policy_file.read_text()
    stop = threading.Event()
    took: list[float] = []

    def reload_loop() -> None:
        n = 0
        with httpx.Client(base_url=base, timeout=120) as client:
            while not stop.is_set():
                n += 1
                policy_file.write_text(original + f'\n@id("reload-{n}")\nforbid (principal, '
                                       f'action, resource == Doc::"never-{n}");\n')
                started = time.perf_counter()
                answer = client.post("/admin/reload",
                                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
                answer.raise_for_status()
                took.append(time.perf_counter() - started)

    thread = threading.Thread(target=reload_loop)
    thread.start()
    try:
        time.sleep(0.5)
        during()
    finally:
        stop.set()
        thread.join()
        policy_file.write_text(original)
    return len(took), [round(t, 2) for t in took]
