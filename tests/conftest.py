"""Shared fixtures: a PDP service on a policy set, an HTTP client on its ASGI app, and a
real ``pdp serve`` process on a free port."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from pdp.http import create_app
from pdp.service import PDPService
from pdp.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
CONFORMANCE = Path(__file__).resolve().parent / "conformance"


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


def start_server(policies: Path, *extra: str, env: dict[str, str] | None = None,
                 ) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    full_env = {**os.environ, "PDP_DECISION_LOG": "off",
                "PDP_DATA_DIR": str(fresh_data_dir(policies.name)), **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pdp", "serve", "--policies", str(policies), "--port", str(port),
         "--log-level", "warning", *extra],
        env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("pdp serve exited: " + (proc.stderr.read() if proc.stderr
                                                        else b"").decode())
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("pdp serve did not become healthy in 30 s")


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
