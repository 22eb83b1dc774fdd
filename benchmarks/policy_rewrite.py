"""False permits while a policy file is rewritten in place, against a real ``pdp serve``.

``allow.cedar`` permits everything, ``deny.cedar`` forbids ``delete``. ``deny.cedar`` is
rewritten in place (truncated, a pause, then written: what editors, ``cp`` and configuration
tools do) ``--rewrites`` times, ``--pause`` seconds between truncate and write, while a client
asks for ``delete`` over HTTP without pause. Prints the answers and how many were permits
(every one is a false permit). A figure, not a test.

    python -m benchmarks.policy_rewrite [--rewrites 15] [--pause 0.15] [--pdp PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ALLOW = '@id("allow-all")\npermit (principal, action, resource);\n'
DENY = '@id("no-deletes")\nforbid (principal, action == Action::"delete", resource);\n'
DELETE = {"subject": {"type": "user", "id": "mallory"}, "action": {"name": "delete"},
          "resource": {"type": "doc", "id": "d"}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rewrites", type=int, default=15)
    parser.add_argument("--pause", type=float, default=0.15)
    parser.add_argument("--pdp", default=shutil.which("pdp") or "pdp")
    args = parser.parse_args(argv)
    policies = Path(tempfile.mkdtemp(prefix="rewrite-"))
    (policies / "allow.cedar").write_text(ALLOW)
    deny = policies / "deny.cedar"
    deny.write_text(DENY)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PDP_DECISION_LOG": "off", "PDP_DECISION_CACHE": "off",
           "PDP_DATA_DIR": tempfile.mkdtemp(prefix="rewrite-data-")}
    server = subprocess.Popen([args.pdp, "serve", "--policies", str(policies), "--port",
                               str(port), "--log-level", "warning"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        stop = threading.Event()
        counts = [0, 0]

        def ask() -> None:
            with httpx.Client(base_url=base) as client:
                while not stop.is_set():
                    answer = client.post("/access/v1/evaluation", json=DELETE)
                    counts[0] += 1
                    counts[1] += answer.json()["decision"] is True

        asker = threading.Thread(target=ask)
        asker.start()
        for _ in range(args.rewrites):
            with deny.open("w") as f:
                f.flush()
                os.fsync(f.fileno())
                time.sleep(args.pause)
                f.write(DENY)
            time.sleep(1.0)
        time.sleep(2.0)
        stop.set()
        asker.join()
    finally:
        server.terminate()
        server.wait()
    print(f"{args.rewrites} in-place rewrites, {args.pause:g} s between truncate and write: "
          f"{counts[1]} of {counts[0]} answers were permits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
