"""Shared fixtures: a PDP service on a policy set, an HTTP client on its ASGI app, and a
real ``pdp serve`` process on a free port."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from pdp.http import create_app
from pdp.service import PDPService
from pdp.settings import Settings
from tests import profiles
from tests.waiting import wait_until

profiles.load()

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
CONFORMANCE = Path(__file__).resolve().parent / "conformance"

#: Rick of the Todo scenario (admin, evil_genius), and a request policies/todo permits him.
RICK = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
RICK_READS_TODOS: dict[str, Any] = {
    "subject": {"type": "user", "id": RICK},
    "action": {"name": "can_read_todos"},
    "resource": {"type": "todo", "id": "1"},
}


def fresh_data_dir(prefix: str) -> Path:
    """A new data directory (entity and decision-log databases) for one service or server,
    removed when the test session ends: services never share a database by accident."""
    base = Path(os.environ.get("PDP_TEST_DATA", Path(tempfile.gettempdir()) / "pdp-test-data"))
    base.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=base))
    atexit.register(shutil.rmtree, path, True)
    return path


def make_service(policies: Path, **overrides: object) -> PDPService:
    overrides.setdefault("data_dir", fresh_data_dir(policies.name))
    settings = Settings(policies=policies, decision_log="off", watch=False,
                        **overrides)  # type: ignore[arg-type]
    return PDPService.from_settings(settings)


@pytest.fixture
def service_factory() -> Callable[..., PDPService]:
    return make_service


@pytest_asyncio.fixture
async def todo_client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_service(POLICIES / "todo"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pdp.test") as client:
        yield client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A real ``pdp serve`` process; its standard error goes to ``log``."""

    proc: subprocess.Popen[bytes]
    base: str
    data_dir: Path
    log: Path

    def stop(self) -> int:
        """SIGTERM (a graceful stop), then its exit status (killed after 30 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def launch_server(policies: Path, *extra: str, env: dict[str, str] | None = None,
                  scheme: str = "http", verify: ssl.SSLContext | bool = True) -> Server:
    """``pdp serve`` on a free port with its own data directory, once ``/health`` answers."""
    port = free_port()
    data_dir = fresh_data_dir(policies.name)
    log = data_dir / "stderr.log"
    full_env = {**os.environ, "PDP_DECISION_LOG": "off", "PDP_DATA_DIR": str(data_dir),
                **(env or {})}
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pdp", "serve", "--policies", str(policies),
             "--port", str(port), *extra],
            env=full_env, stdout=subprocess.DEVNULL, stderr=stderr)
    server = Server(proc, f"{scheme}://127.0.0.1:{port}", data_dir, log)

    def healthy() -> bool:
        if proc.poll() is not None:
            raise RuntimeError("pdp serve exited: " + log.read_text())
        try:
            return httpx.get(server.base + "/health", timeout=1, verify=verify).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(healthy, timeout=30, message="pdp serve becoming healthy")
    except AssertionError:
        server.stop()
        raise RuntimeError("pdp serve did not become healthy in 30 s") from None
    return server


def start_server(policies: Path, *extra: str, env: dict[str, str] | None = None,
                 ) -> tuple[subprocess.Popen[bytes], str]:
    server = launch_server(policies, "--log-level", "warning", *extra, env=env)
    return server.proc, server.base


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


@pytest.fixture(scope="session")
def todo_server() -> Iterator[str]:
    proc, base = start_server(POLICIES / "todo")
    try:
        yield base
    finally:
        stop_server(proc)
