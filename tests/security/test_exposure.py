"""Who can reach ``pdp serve`` and what it believes about them, against real processes.

Shown: ``X-Forwarded-For`` is ignored unless ``PDP_TRUSTED_PROXIES`` lists the peer (so the
per-client rate limit cannot be dodged); an unauthenticated PDP answers only loopback host
names (DNS rebinding) and ``PDP_ALLOWED_HOSTS`` widens that; a server started on
``0.0.0.0`` by plain ``uvicorn --factory`` or by gunicorn without credentials answers nothing
that arrives on a non-loopback address; credentials without TLS on a non-loopback address warn
loudly or, with ``PDP_REQUIRE_TLS``, refuse to start; ``PDP_PUBLIC_URL`` must be an absolute
https (or loopback http) URL without query or fragment.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from pydantic import ValidationError

from pdp.auth import check_exposure
from pdp.auth.keys import entry_for, new_key
from pdp.cli import main
from pdp.errors import ConfigurationError
from pdp.settings import Settings
from tests.conftest import POLICIES, RICK, ROOT, free_port, fresh_data_dir, launch_server

EVALUATION = {"subject": {"type": "user", "id": RICK}, "action": {"name": "can_read_todos"},
              "resource": {"type": "todo", "id": "1"}}


def _non_loopback_address() -> str | None:
    """This machine's address on its default route (no packet is sent), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            address = str(s.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted() -> None:
    env = {"PDP_RATE_LIMIT": "0.01", "PDP_RATE_LIMIT_BURST": "1"}
    server = launch_server(POLICIES / "todo", env=env)
    try:
        first = httpx.post(server.base + "/access/v1/evaluation", json=EVALUATION,
                           headers={"X-Forwarded-For": "203.0.113.1"})
        second = httpx.post(server.base + "/access/v1/evaluation", json=EVALUATION,
                            headers={"X-Forwarded-For": "203.0.113.2"})
    finally:
        server.stop()
    assert first.status_code == 200
    assert second.status_code == 429  # the same client: the socket's peer, not the header
    trusted = launch_server(POLICIES / "todo", env={**env, "PDP_TRUSTED_PROXIES": "127.0.0.1"})
    try:
        answers = [httpx.post(trusted.base + "/access/v1/evaluation", json=EVALUATION,
                              headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
                   for i in (1, 2)]
    finally:
        trusted.stop()
    assert answers == [200, 200]  # behind a trusted proxy each forwarded client has its bucket


@pytest.fixture(scope="module")
def open_server() -> Iterator[str]:
    server = launch_server(POLICIES / "todo")
    try:
        yield server.base
    finally:
        server.stop()


def test_an_unauthenticated_pdp_answers_loopback_host_names_only(open_server: str) -> None:
    port = open_server.rsplit(":", 1)[1]
    rebound = httpx.post(open_server + "/access/v1/evaluation", json=EVALUATION,
                         headers={"Host": f"attacker.example:{port}"})
    assert rebound.status_code == 400
    assert rebound.json()["error"] == "host_not_allowed"
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "localhost"):
        answer = httpx.post(open_server + "/access/v1/evaluation", json=EVALUATION,
                            headers={"Host": host})
        assert answer.status_code == 200, host


def test_allowed_hosts_and_credentials_widen_the_host_list() -> None:
    key = new_key()
    server = launch_server(POLICIES / "todo", env={
        "PDP_ALLOWED_HOSTS": "127.0.0.1,pdp.internal,*.pdp.example",
        "PDP_API_KEYS": entry_for("p", key)})
    try:
        def status(host: str) -> int:
            return httpx.post(server.base + "/access/v1/evaluation", json=EVALUATION,
                              headers={"Host": host, "Authorization": f"Bearer {key}"}
                              ).status_code

        assert status("pdp.internal") == 200
        assert status("a.pdp.example:443") == 200
        assert status("attacker.example") == 400
    finally:
        server.stop()
    anyhost = launch_server(POLICIES / "todo", env={"PDP_API_KEYS": entry_for("p", key)})
    try:
        answer = httpx.post(anyhost.base + "/access/v1/evaluation", json=EVALUATION,
                            headers={"Host": "pdp.example.com",
                                     "Authorization": f"Bearer {key}"})
        assert answer.status_code == 200  # with credentials, any host name
    finally:
        anyhost.stop()


SERVERS = {
    "uvicorn --factory app_from_environment": [
        "-m", "uvicorn", "pdp.http.app:app_from_environment", "--factory", "--host", "0.0.0.0",
        "--port", "{port}"],
    "uvicorn --factory create_app": [
        "-m", "uvicorn", "pdp.http.app:create_app", "--factory", "--host", "0.0.0.0",
        "--port", "{port}"],
    "gunicorn with uvicorn workers": [
        "-m", "gunicorn", "-k", "uvicorn.workers.UvicornWorker", "-w", "1",
        "-b", "0.0.0.0:{port}", "pdp.http.app:create_app()"],
}


@pytest.mark.parametrize("server", list(SERVERS))
def test_a_server_on_all_addresses_without_credentials_answers_loopback_only(
        server: str) -> None:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    port = free_port()
    data_dir = fresh_data_dir("exposure")
    env = {**os.environ, "PDP_DECISION_LOG": "off", "PDP_DATA_DIR": str(data_dir),
           "PDP_POLICIES": str(POLICIES / "todo"), "PDP_ALLOWED_HOSTS": "*"}
    for name in ("PDP_HOST", "PDP_API_KEYS", "PDP_ALLOW_UNAUTHENTICATED"):
        env.pop(name, None)
    log = data_dir / "stderr.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, *(a.replace("{port}", str(port)) for a in SERVERS[server])],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        local = httpx.post(f"http://127.0.0.1:{port}/access/v1/evaluation", json=EVALUATION)
        remote = httpx.post(f"http://{address}:{port}/access/v1/evaluation", json=EVALUATION)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert local.status_code == 200
    assert remote.status_code == 403
    assert remote.json()["error"] == "not_exposed"
    assert f"refusing requests on {address}" in log.read_text()


def test_credentials_without_tls_off_loopback_warn_or_refuse(
        caplog: pytest.LogCaptureFixture) -> None:
    keys = [entry_for("pep", new_key())]
    with caplog.at_level(logging.WARNING, logger="pdp.auth"):
        check_exposure(Settings(host="0.0.0.0", api_keys=keys,
                                public_url="https://pdp.example.com"))
    assert "IN CLEAR" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pdp.auth"):
        check_exposure(Settings(host="127.0.0.1", api_keys=keys))
    assert caplog.text == ""
    with pytest.raises(ConfigurationError, match="PDP_REQUIRE_TLS"):
        check_exposure(Settings(host="0.0.0.0", api_keys=keys, require_tls=True))


def test_require_tls_stops_pdp_serve(capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDP_API_KEYS", entry_for("pep", new_key()))
    monkeypatch.setenv("PDP_REQUIRE_TLS", "true")
    monkeypatch.setenv("PDP_DATA_DIR", str(fresh_data_dir("tls")))
    assert main(["serve", "--policies", str(POLICIES / "todo"), "--host", "0.0.0.0"]) == 2
    assert "PDP_REQUIRE_TLS" in capsys.readouterr().err


def test_a_non_loopback_bind_without_a_public_url_warns(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pdp.auth"):
        check_exposure(Settings(host="0.0.0.0", allow_unauthenticated=True))
    assert "without PDP_PUBLIC_URL" in caplog.text


@pytest.mark.parametrize("url", [
    "ftp://pdp.example.com", "https://pdp.example.com/?next=evil", "https://pdp.example.com#x",
    "http://pdp.example.com", "pdp.example.com", "/relative", "https://user:pw@pdp.example.com",
])
def test_a_public_url_must_be_absolute_https_without_query_or_fragment(url: str) -> None:
    with pytest.raises(ValidationError):
        Settings(public_url=url)


@pytest.mark.parametrize("url", ["https://pdp.example.com", "https://pdp.example.com:8443/pdp",
                                 "http://127.0.0.1:8080", "http://localhost:8080"])
def test_good_public_urls_are_kept(url: str) -> None:
    assert Settings(public_url=url).public_url == url


def test_a_bad_public_url_flag_stops_pdp_serve(capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDP_DATA_DIR", str(fresh_data_dir("url")))
    assert main(["serve", "--policies", str(POLICIES / "todo"),
                 "--public-url", "https://pdp.example.com/?a=1"]) == 2
    assert "query or fragment" in capsys.readouterr().err


def _scope(host: bytes | None, server: object = ("127.0.0.1", 8080)) -> dict[str, object]:
    headers = [] if host is None else [(b"host", host)]
    return {"type": "http", "server": server, "headers": [(b"accept", b"*/*"), *headers]}


def test_the_exposure_checks_answer_each_request_whatever_was_answered_before(
        caplog: pytest.LogCaptureFixture) -> None:
    from pdp.errors import HostNotAllowed, NotExposed
    from pdp.http.exposure import Exposure

    exposure = Exposure(Settings(data_dir=fresh_data_dir("exposure")), authenticated=False)
    caplog.set_level(logging.INFO, logger="pdp.http")
    for _ in range(3):  # answers remembered, if any, change nothing
        assert exposure.refusal(_scope(b"localhost:8080")) is None
        assert exposure.refusal(_scope(b"127.0.0.1", ["127.0.0.1", 8080])) is None
        assert isinstance(exposure.refusal(_scope(b"evil.example")), HostNotAllowed)
        assert isinstance(exposure.refusal(_scope(None)), HostNotAllowed)
        assert isinstance(exposure.refusal(_scope(b"localhost:8080", ("10.1.2.3", 8080))),
                          NotExposed)
    refused = [r for r in caplog.records if "refused a request for host" in r.getMessage()]
    assert len(refused) == 6  # each refusal logged, as before
