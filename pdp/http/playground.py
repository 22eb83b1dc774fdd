"""``GET /playground``: a page for policy authors, served by the PDP with all its assets.

Off unless ``PDP_PLAYGROUND=true`` (``pdp serve --playground``). It is open only where anyone
could already ask for decisions — a loopback address with no PEP credentials configured (the
quick start); anywhere else every playground path needs an admin credential, and without one
configured the server refuses to start (``pdp.playground.check_playground``).

``GET /playground/api/set`` shows the served set (its files and its tests' requests as
examples); ``POST /playground/api/decide`` decides ``{"request": …}`` against it, or against
``{"scratch": {"policies", "schema", "entities"}}`` compiled on the spot. Playground decisions
are not written to the decision log.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

from pdp.authzen import parse_json_body
from pdp.errors import PolicyLoadError, RequestError
from pdp.http.access import read_body
from pdp.http.responses import json_response
from pdp.playground import (
    SCRATCH_POLICY_FILE,
    Scratch,
    compile_scratch,
    decide,
    diagnostics,
    policy_set_view,
    policy_texts,
    scratch_engine,
)
from pdp.service import PDPService

__all__ = ["PLAYGROUND_PATH", "install_playground"]

PLAYGROUND_PATH = "/playground"
_ASSETS = Path(__file__).resolve().parent / "playground_assets"
# Everything comes from the PDP itself: no CDN, no inline script, no framing.
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")


def install_playground(app: Any, service: PDPService, dependencies: Sequence[Any] = ()) -> None:
    """Mount the page, its assets and its API on ``app`` (a FastAPI application);
    ``dependencies`` guard the page and its API (the admin check where it is not open)."""
    settings = service.settings
    app.mount(f"{PLAYGROUND_PATH}/assets", StaticFiles(directory=_ASSETS / "assets"),
              name="playground-assets")
    router = APIRouter(prefix=PLAYGROUND_PATH, include_in_schema=False,
                       dependencies=list(dependencies))

    @router.get("")
    async def page() -> Response:
        return FileResponse(_ASSETS / "playground.html", media_type="text/html",
                            headers={"Content-Security-Policy": _CSP,
                                     "Cache-Control": "no-store"})

    @router.get("/api/set")
    async def served_set() -> Response:
        view = await run_in_threadpool(policy_set_view, service.policies.current)
        return json_response(view)

    @router.post("/api/decide")
    async def decide_request(request: Request) -> Response:
        raw = await read_body(request, settings.max_body_bytes)
        body = parse_json_body(request.headers.get("content-type"), raw,
                               max_bytes=settings.max_body_bytes, max_depth=settings.max_depth)
        if not isinstance(body, dict) or "request" not in body:
            raise RequestError("the body must be an object with `request` (and optionally "
                               "`scratch`)", field="request")
        if body.get("scratch") is None:
            compiled = service.policies.current  # decided on the loop, as /access/v1/ does
            return json_response(decide(service.engine, compiled, policy_texts(compiled),
                                        body["request"]))
        scratch = Scratch.from_json(body["scratch"])
        try:
            compiled = await run_in_threadpool(compile_scratch, scratch)
        except PolicyLoadError as exc:
            return json_response({"error": exc.code, "message": "the scratch policy set is "
                                  "invalid", "diagnostics": diagnostics(exc)}, 400)
        engine = scratch_engine(compiled, service.engine.options)
        return json_response(decide(engine, compiled, {SCRATCH_POLICY_FILE: scratch.policies},
                                    body["request"]))

    app.include_router(router)
