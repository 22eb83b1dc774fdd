"""``pdp serve`` as run in production, as real processes: graceful shutdown on SIGTERM with the
decision log drained, TLS and mutual TLS, JSON logs, and a slow client cut off with 408."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import signal
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client.parser import text_string_to_metric_families

from pdp.decision_log.query import DecisionReader
from pdp.entities.database import open_database, sqlite_url
from tests.conftest import POLICIES, RICK_READS_TODOS, Server, launch_server
from tests.waiting import wait_until

VALID = RICK_READS_TODOS


def serve(*extra: str, env: dict[str, str] | None = None, scheme: str = "http",
          verify: ssl.SSLContext | bool = True) -> Server:
    return launch_server(POLICIES / "todo", *extra, env=env, scheme=scheme, verify=verify)


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


# -- graceful shutdown --------------------------------------------------------------------------


async def _burst(base: str, count: int, stop_after: int, proc: subprocess.Popen[bytes],
                 ) -> dict[str, httpx.Response | Exception]:
    """``count`` concurrent evaluations; SIGTERM once ``stop_after`` are answered, and then
    ``count // 3`` more requests, which find the server stopping."""
    outcomes: dict[str, httpx.Response | Exception] = {}
    answered = 0
    signalled = asyncio.Event()
    late: list[asyncio.Task[None]] = []
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        async def one(i: int) -> None:
            nonlocal answered
            request_id = f"burst-{i:04d}"
            try:
                outcomes[request_id] = await client.post(
                    "/access/v1/evaluation", json=VALID, headers={"X-Request-ID": request_id})
            except httpx.TransportError as exc:
                outcomes[request_id] = exc
                return
            answered += 1
            if answered == stop_after and not signalled.is_set():
                signalled.set()
                proc.send_signal(signal.SIGTERM)  # in the middle of the burst
                late.extend(asyncio.create_task(one(count + i)) for i in range(count // 3))

        await asyncio.gather(*(one(i) for i in range(count)))
        await asyncio.gather(*late)
    assert signalled.is_set()
    return outcomes


@pytest.mark.slow
def test_sigterm_mid_burst_finishes_accepted_requests_and_logs_each_exactly_once(
        servers: list[Server]) -> None:
    server = serve("--decision-cache", "off", "--log-level", "warning",
                   env={"PDP_DECISION_LOG": "on", "PDP_SHUTDOWN_TIMEOUT": "20"})
    servers.append(server)
    outcomes = asyncio.run(_burst(server.base, 300, 50, server.proc))
    assert server.proc.wait(timeout=60) == 0, server.log.read_text()

    ok = set()
    for request_id, outcome in outcomes.items():
        if isinstance(outcome, Exception):  # never reached the application (see below)
            continue
        assert outcome.status_code == 200, (request_id, outcome.status_code, outcome.text)
        assert outcome.json() == {"decision": True}
        assert outcome.headers["x-request-id"] == request_id
        ok.add(request_id)
    assert len(ok) >= 50

    reader = DecisionReader(open_database(sqlite_url(server.data_dir / "decisions.db")))
    try:
        records = reader.latest(1000)
    finally:
        reader.close()
    logged = [r["request_id"] for r in records]
    assert len(logged) == len(set(logged)), "a decision was logged twice"
    # every answered request was logged, and no request that got no answer was decided
    assert set(logged) == ok
    assert "unwritten" not in server.log.read_text()


# -- TLS ------------------------------------------------------------------------------------------


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    stranger_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def _issue(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
           issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool = False,
           server: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True,
            content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False)
        usage = x509.ExtendedKeyUsageOID.SERVER_AUTH if server \
            else x509.ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue("test CA", ca_key, _name("test CA"), ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    client_key = ec.generate_private_key(ec.SECP256R1())
    other_ca_key = ec.generate_private_key(ec.SECP256R1())
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    return Pki(
        ca=_pem(ca, d / "ca.pem"),
        server_cert=_pem(_issue("127.0.0.1", server_key, ca.subject, ca_key, server=True),
                         d / "server.pem"),
        server_key=_write_key(server_key, d / "server.key"),
        client_cert=_pem(_issue("pep-1", client_key, ca.subject, ca_key), d / "client.pem"),
        client_key=_write_key(client_key, d / "client.key"),
        stranger_cert=_pem(_issue("stranger", stranger_key, _name("other CA"), other_ca_key),
                           d / "stranger.pem"),
        stranger_key=_write_key(stranger_key, d / "stranger.key"),
    )


def _context(pki: Pki, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if cert is not None:
        context.load_cert_chain(str(cert), str(key))
    return context


def test_https_serves_decisions_and_advertises_https_urls(
        pki: Pki, servers: list[Server]) -> None:
    server = serve("--tls-certfile", str(pki.server_cert), "--tls-keyfile", str(pki.server_key),
                   "--log-level", "warning", scheme="https", verify=_context(pki))
    servers.append(server)
    assert server.base.startswith("https://")
    with httpx.Client(base_url=server.base, verify=_context(pki)) as client:
        answer = client.post("/access/v1/evaluation", json=VALID)
        assert answer.status_code == 200
        assert answer.json() == {"decision": True}
        metadata = client.get("/.well-known/authzen-configuration").json()
    assert metadata["policy_decision_point"] == server.base
    assert metadata["access_evaluation_endpoint"].startswith("https://127.0.0.1:")
    plain = server.base.replace("https://", "http://")
    with pytest.raises(httpx.TransportError):
        httpx.get(plain + "/health", timeout=5)


def test_with_a_client_ca_only_clients_with_a_certificate_it_signed_get_in(
        pki: Pki, servers: list[Server]) -> None:
    # mutual TLS is PEP authentication: it starts on every address without API keys
    server = serve("--tls-certfile", str(pki.server_cert), "--tls-keyfile", str(pki.server_key),
                   "--tls-client-ca", str(pki.ca), "--host", "0.0.0.0",
                   "--log-level", "warning", scheme="https",
                   verify=_context(pki, pki.client_cert, pki.client_key))
    servers.append(server)
    url = server.base + "/access/v1/evaluation"
    with pytest.raises(httpx.TransportError):
        httpx.post(url, json=VALID, verify=_context(pki), timeout=5)
    with pytest.raises(httpx.TransportError):
        httpx.post(url, json=VALID, timeout=5,
                   verify=_context(pki, pki.stranger_cert, pki.stranger_key))
    answer = httpx.post(url, json=VALID, timeout=5,
                        verify=_context(pki, pki.client_cert, pki.client_key))
    assert answer.status_code == 200
    assert answer.json() == {"decision": True}


# -- logs and slow clients ------------------------------------------------------------------------


def _reply(sock: socket.socket) -> str:
    """One HTTP/1.1 response with a Content-Length, as text."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return (head + b"\r\n\r\n" + body).decode()


def test_json_logs_are_one_object_per_line_uvicorn_included_with_the_request_id(
        servers: list[Server]) -> None:
    server = serve("--log-level", "info",
                   env={"PDP_LOG_FORMAT": "json", "PDP_REQUEST_TIMEOUT": "0.5"})
    servers.append(server)
    # a slow client: headers and half a body, then nothing
    port = int(server.base.rsplit(":", 1)[1])
    body = json.dumps(VALID).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /coaz/v1/map HTTP/1.1\r\nHost: localhost\r\nX-Request-ID: slow-1\r\n"
                     b"Content-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
                     + body[:10])
        reply = _reply(sock)
    assert reply.startswith("HTTP/1.1 408"), reply
    assert '"request_timeout"' in reply
    assert server.stop() == 0
    records = [json.loads(line) for line in server.log.read_text().splitlines() if line]
    assert any(r["logger"].startswith("uvicorn") for r in records)
    assert not any(r["logger"] == "uvicorn.access" for r in records)  # no access log
    slow = [r for r in records if r.get("request_id") == "slow-1"]
    assert slow and slow[0]["level"] == "WARNING", records
    assert "0.5 s" in slow[0]["message"]


def test_a_slow_body_to_a_decision_endpoint_of_a_real_server_is_a_408(
        servers: list[Server]) -> None:
    server = serve("--log-level", "warning", env={"PDP_REQUEST_TIMEOUT": "0.5"})
    servers.append(server)
    port = int(server.base.rsplit(":", 1)[1])
    body = json.dumps(VALID).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /access/v1/evaluation HTTP/1.1\r\nHost: localhost\r\n"
                     b"Content-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:10])
        reply = _reply(sock)
    assert reply.startswith("HTTP/1.1 408"), reply
    assert '"request_timeout"' in reply
    assert httpx.post(server.base + "/access/v1/evaluation", json=VALID).json() == {
        "decision": True}


# -- several workers ------------------------------------------------------------------------------


def _scrape(base: str) -> tuple[dict[str, float], set[str]]:
    """From one scrape: pdp_http_requests_total{endpoint="evaluation",status="200"} per
    worker, and the workers that report a policy set."""
    text = httpx.get(base + "/metrics", timeout=5).text
    counts: dict[str, float] = {}
    workers: set[str] = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "pdp_policy_set_info":
                workers.add(sample.labels["worker"])
            if (sample.name == "pdp_http_requests_total"
                    and sample.labels.get("endpoint") == "evaluation"
                    and sample.labels.get("status") == "200"):
                counts[sample.labels["worker"]] = sample.value
    return counts, workers


def test_with_several_workers_any_scrape_shows_every_workers_metrics(
        servers: list[Server]) -> None:
    server = serve("--workers", "2", env={"PDP_POLL_INTERVAL": "0.2"})
    servers.append(server)
    sent = 60
    for _ in range(sent):  # a new connection each: the workers share them out
        assert httpx.post(server.base + "/access/v1/evaluation", json=VALID,
                          timeout=5).status_code == 200
    def every_scrape_counts_all() -> list[tuple[dict[str, float], set[str]]] | None:
        scrapes = [_scrape(server.base) for _ in range(4)]
        return scrapes if all(sum(c.values()) == sent for c, _ in scrapes) else None

    scrapes = wait_until(every_scrape_counts_all, timeout=15,
                         message="every scrape counting every worker's requests")
    for counts, workers in scrapes:  # whichever worker answered the scrape
        assert sum(counts.values()) == sent
        assert len(workers) == 2 and all(w.isdigit() for w in workers), workers
        assert set(counts) <= workers
    assert server.stop() == 0
    assert not list((server.data_dir / "metrics").glob("*.prom"))  # withdrawn at shutdown
