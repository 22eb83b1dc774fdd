"""What PEP authentication and the rate limiter cost on ``/access/v1/evaluation``.

Identical applications on ``policies/search``, in this process, each request driven straight
through ASGI (no transport: the strictest view, where a request costs tens of microseconds),
rounds alternating, the median round counting:

* ``none``: no PEP credential (the loopback quick start);
* ``api key``: ``PDP_API_KEYS`` with three entries, the PEP sending ``Authorization: Bearer``;
* ``jwt``: ``PDP_PEP_JWKS_FILE``, the PEP sending one RS256 token again and again (accepted
  tokens are remembered until ``exp``: the first costs a signature check, the rest a lookup);
* ``api key + rate limit``: the key, and ``PDP_RATE_LIMIT`` high enough never to refuse.

The requests cycle through 2,000 distinct evaluations with the decision cache on, so the
decision is as cheap as it gets and authentication's share as large as it gets. Printed: requests/s,
server CPU per request, and each configuration's cost over ``none``.

    python -m benchmarks.bench_pep_auth [--requests N] [--rounds N] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    import pdp  # noqa: F401
except ModuleNotFoundError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from joserfc import jwt
from joserfc.jwk import RSAKey

from benchmarks.bench_decision_log import bodies, drive
from pdp.auth.keys import entry_for
from pdp.http import create_app
from pdp.service import PDPService
from pdp.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
ISSUER, AUDIENCE = "https://as.example.com", "https://pdp.example.com"
KEY = "bench-key-0123456789abcdefghijklmnopqrstuvwxyz"


def _jwks(directory: Path) -> tuple[Path, str]:
    key = RSAKey.generate_key(2048, parameters={"kid": "bench", "use": "sig"})
    path = directory / "jwks.json"
    path.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    now = int(time.time())
    token = jwt.encode({"alg": "RS256", "kid": "bench"},
                       {"iss": ISSUER, "aud": AUDIENCE, "sub": "gateway", "client_id": "gw",
                        "scope": "authzen:evaluate", "iat": now, "exp": now + 3600},
                       key, algorithms=["RS256"])
    return path, token


def configurations(tmp: Path) -> dict[str, tuple[dict[str, Any], list[tuple[bytes, bytes]]]]:
    jwks, token = _jwks(tmp)
    keys = [entry_for(f"gw-{i}", f"{KEY}-{i}") for i in (1, 2)] + [entry_for("gw", KEY)]
    bearer = [(b"authorization", f"Bearer {KEY}".encode())]
    return {
        "none": ({}, []),
        "api key": ({"api_keys": keys}, bearer),
        "jwt": ({"pep_jwks_file": jwks, "pep_jwt_issuers": [ISSUER],
                 "pep_jwt_audience": AUDIENCE}, [(b"authorization", f"Bearer {token}".encode())]),
        "api key + rate limit": ({"api_keys": keys, "rate_limit": 1e9,
                                  "rate_limit_burst": 1_000_000_000}, bearer),
    }


def run(requests: int, rounds: int) -> dict[str, Any]:
    payloads = bodies(2_000)
    rates: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="pdp-bench-auth-") as tmp_name:
        tmp = Path(tmp_name)
        apps = {}
        for name, (settings, headers) in configurations(tmp).items():
            service = PDPService.from_settings(Settings(
                policies=ROOT / "policies" / "search", data_dir=tmp / name.replace(" ", "-"),
                decision_log="off", entity_store="memory", watch=False, **settings))
            apps[name] = (create_app(service), headers)
            rates[name], cpus[name] = [], []

        async def measure() -> None:  # one event loop: the JWT authenticator's client lives on it
            for app, headers in apps.values():
                await drive(app, payloads, 2_000, headers)  # warm: caches, code paths
            for _ in range(rounds):
                for name, (app, headers) in apps.items():
                    rate, cpu = await drive(app, payloads, requests, headers)
                    rates[name].append(rate)
                    cpus[name].append(cpu)

        asyncio.run(measure())
    base_cpu = statistics.median(cpus["none"])
    return {name: {"requests_per_s": round(statistics.median(rates[name]), 1),
                   "cpu_us_per_request": round(statistics.median(cpus[name]), 2),
                   "cost_us_over_none": round(statistics.median(cpus[name]) - base_cpu, 2),
                   "rate_vs_none": round(statistics.median(rates[name])
                                         / statistics.median(rates["none"]), 3)}
            for name in rates}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_pep_auth",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000, help="per round (20,000)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results = run(args.requests, args.rounds)
    print(f"PEP authentication through ASGI, {args.rounds} rounds of {args.requests:,} "
          f"requests ({platform.python_implementation()} {platform.python_version()})")
    print(f"{'configuration':<22}{'req/s':>10}{'CPU µs/req':>12}{'cost µs':>9}{'vs none':>9}")
    for name, r in results.items():
        print(f"{name:<22}{r['requests_per_s']:>10,.0f}{r['cpu_us_per_request']:>12.1f}"
              f"{r['cost_us_over_none']:>9.1f}{r['rate_vs_none']:>9.3f}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
