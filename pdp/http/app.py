"""The FastAPI application: AuthZEN routes, metadata, health, status and admin.

``create_app(service)`` builds an app around an already-wired :class:`PDPService`;
``app_from_environment()`` is the uvicorn factory used by ``pdp serve`` (settings from
``PDP_*`` variables, which the CLI sets from its flags; ``create_app()`` without a service is
the same), with the exposure checks of :mod:`pdp.http.exposure` outermost.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from pdp.auth import ADMIN_REALM, Principal, authenticators, check_exposure
from pdp.authzen.metadata import EVALUATION_PATH, EVALUATIONS_PATH, WELL_KNOWN_PATH
from pdp.errors import (
    AuthenticationFailed,
    InvalidField,
    MethodNotAllowed,
    NotFound,
    PDPError,
)
from pdp.http.access import access_routes, access_routes_of, decision_endpoints
from pdp.http.admin import admin_router
from pdp.http.apidocs import install_api_docs
from pdp.http.auth import AuthenticationMiddleware
from pdp.http.coaz import CoazEndpoints, coaz_docs, coaz_routes
from pdp.http.direct import DirectLane
from pdp.http.exposure import Exposure, ExposureMiddleware
from pdp.http.lane import LanedFastAPI
from pdp.http.metrics import HttpCollector, new_stats
from pdp.http.middleware import ObservabilityMiddleware
from pdp.http.openapi import DocumentedRoute, install_openapi
from pdp.http.playground import PLAYGROUND_PATH, install_playground
from pdp.http.ratelimit import RateLimitMiddleware
from pdp.http.responses import error_answer, json_response
from pdp.http.schemas import (
    DecisionModel,
    EvaluationModel,
    EvaluationsModel,
    EvaluationsResponseModel,
    MetadataModel,
)
from pdp.http.search import search_docs, search_routes
from pdp.http.timeout import TimeoutMiddleware
from pdp.http.workers import WorkerMetrics
from pdp.logs import configure_logging
from pdp.playground import check_playground, playground_is_open
from pdp.ratelimit import RateLimiter
from pdp.service import PDPService
from pdp.settings import Settings

__all__ = ["create_app", "app_from_environment", "require_admin"]

log = logging.getLogger("pdp.http")

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def require_admin(request: Request) -> None:
    """A dependency: the request was authenticated with an admin credential by
    :class:`~pdp.http.auth.AuthenticationMiddleware` (which also answers 404 while no admin
    credential is configured). Fails closed if the middleware is missing."""
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal) or principal.kind != "admin":
        raise AuthenticationFailed("an admin credential is required",
                                   challenge=f'Bearer realm="{ADMIN_REALM}"')


def create_app(service: PDPService | None = None, *, lifespan: Lifespan | None = None,
               extra_docs: Sequence[DocumentedRoute] = ()) -> FastAPI:
    """The application around ``service``; without one (``uvicorn pdp.http.app:create_app
    --factory``), the served application of :func:`app_from_environment`."""
    if service is None:
        return app_from_environment()
    pep_auth, admin_auth = authenticators(service.settings)  # ConfigurationError if malformed
    coaz = CoazEndpoints(service, pep_authentication=pep_auth.enabled)
    otel = service.settings.opentelemetry
    # awaited before and after the application's own lifespan (filled in below)
    starters: list[Callable[[], Awaitable[None]]] = []
    closers: list[Callable[[], Awaitable[None]]] = [coaz.aclose, pep_auth.aclose]
    app = LanedFastAPI(
        title="AuthZEN PDP",
        version="1.0",
        description="OpenID AuthZEN 1.0 Policy Decision Point backed by Cedar policies.",
        # FastAPI looks up the global OpenTelemetry providers on every request unless told not
        # to: about 3 µs, an eighth of a cached decision.
        telemetry={"tracing": otel, "metrics": otel, "logs": otel},
        lifespan=_around(lifespan, starters, closers),
        docs_url=None, redoc_url=None,  # served from package assets below, never a CDN
    )
    install_api_docs(app, "AuthZEN PDP")
    app.state.service = service
    app.state.coaz = coaz
    lean = [*access_routes(service), *search_routes(service)]  # their own body deadline
    app.router.routes[:0] = [*lean, *coaz_routes(coaz)]
    if not otel:  # (with telemetry on, every request is traced: FastAPI's full path)
        app.lane = access_routes_of(lean)
    admin = Depends(require_admin)
    app.include_router(admin_router(service), dependencies=[admin])

    @app.exception_handler(PDPError)
    async def pdp_error(request: Request, exc: PDPError) -> Response:
        return error_answer(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # unknown paths and methods answer in the same error shape as everything else
        if exc.status_code == 405:
            response = error_answer(request,
                                    MethodNotAllowed("this path does not take this method"))
        elif exc.status_code == 404:
            response = error_answer(request, NotFound("no such endpoint"))
        else:
            response = json_response({"error": "http_error", "message": str(exc.detail)},
                                     exc.status_code)
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or None
        return error_answer(request, InvalidField(str(first.get("msg", "invalid request")),
                                                  field=field))

    @app.get(WELL_KNOWN_PATH, response_model=MetadataModel, response_model_exclude_none=True,
             tags=["AuthZEN"], summary="PDP metadata")
    async def metadata() -> Response:
        return json_response(service.metadata())

    @app.get(WELL_KNOWN_PATH + "/{tenant}", response_model=MetadataModel,
             response_model_exclude_none=True, tags=["AuthZEN"],
             summary="A tenant's PDP metadata (PDP_TENANTS; 404 for any other)")
    async def tenant_metadata(tenant: str) -> Response:
        return json_response(service.metadata(tenant))

    @app.get("/health", tags=["operations"], summary="Liveness")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", tags=["operations"], summary="Readiness: policies loaded, store up")
    async def ready() -> Response:
        is_ready, body = await run_in_threadpool(service.readiness)
        return json_response(body, 200 if is_ready else 503)

    @app.get("/status", tags=["operations"], summary="Active policy set and last reload error")
    async def status() -> Response:
        return json_response(service.status())

    registry = CollectorRegistry(auto_describe=False)  # this app's, never the global one
    for collector in service.collectors():
        registry.register(collector)
    http_stats = new_stats()
    registry.register(HttpCollector(http_stats))

    exposed = registry
    if service.settings.workers > 1:  # every worker's metrics, from whichever is asked
        workers = WorkerMetrics(registry, service.settings.data_dir / "metrics",
                                interval=service.settings.poll_interval)
        exposed = CollectorRegistry(auto_describe=False)
        exposed.register(workers)
        starters.append(workers.start)
        closers.append(workers.aclose)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(exposed), media_type=CONTENT_TYPE_LATEST)

    @app.post("/admin/reload", tags=["admin"], summary="Reload the policy directory",
              dependencies=[admin])
    async def reload() -> Response:
        # Compiled off the event loop; the other workers follow through the generation
        # file within PDP_POLL_INTERVAL (see pdp.service.reload).
        new = await run_in_threadpool(service.reloader.reload, "POST /admin/reload")
        service.reloader.announce()
        if new is None:
            failure = service.policies.last_failure
            assert failure is not None
            return json_response(failure.error.to_dict(), 422)
        return json_response({"version": new.version, "policies": len(new.policies)})

    docs = [
        DocumentedRoute(EVALUATION_PATH, "Access evaluation", EvaluationModel, DecisionModel),
        DocumentedRoute(EVALUATIONS_PATH, "Access evaluations (batch)", EvaluationsModel,
                        (EvaluationsResponseModel, DecisionModel)),
        *search_docs(),
        *coaz_docs(),
        *extra_docs,
    ]
    install_openapi(app, lambda: docs)
    playground_admin: tuple[str, ...] = ()
    if service.settings.playground:
        check_playground(service.settings)  # however the app is made: never left open
        if not playground_is_open(service.settings):
            playground_admin = (PLAYGROUND_PATH,)
        install_playground(app, service, [admin] if playground_admin else [])
    # Middleware: the LAST added runs FIRST (outermost). From the outside in: request id and
    # HTTP metrics (so 401 and 429 are counted) → authentication → rate limit (keyed by the
    # principal authentication found) → timeout → routes.
    settings = service.settings
    limiter = None if settings.rate_limit is None else RateLimiter(
        settings.rate_limit, settings.rate_limit_burst)
    app.add_middleware(TimeoutMiddleware, timeout=settings.request_timeout,
                       exempt=[route.path for route in lean], body_only=("/admin/",))
    if limiter is not None:  # added before (so inside) authentication
        app.add_middleware(RateLimitMiddleware, limiter=limiter)
    app.add_middleware(AuthenticationMiddleware, pep=pep_auth, admin=admin_auth,
                       admin_prefixes=playground_admin)
    app.add_middleware(ObservabilityMiddleware, stats=http_stats)
    if not otel:  # the same endpoints and checks, for pdp serve's protocol (pdp.http.direct)
        app.state.direct_lane = DirectLane.of(decision_endpoints(service), stats=http_stats,
                                              pep=pep_auth, limiter=limiter)
    return app


def _around(inner: Lifespan | None, starters: Sequence[Callable[[], Awaitable[None]]],
            closers: Sequence[Callable[[], Awaitable[None]]]) -> Lifespan:
    """A lifespan that awaits each starter, runs ``inner``, then awaits each closer (even if
    ``inner`` failed)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            for start in starters:
                await start()
            if inner is None:
                yield
            else:
                async with inner(app):
                    yield
        finally:
            for close in closers:
                await close()

    return lifespan


def app_from_environment() -> FastAPI:
    """uvicorn factory: settings from the environment, one service per worker process."""
    settings = Settings()
    configure_logging(settings)
    check_exposure(settings)  # however the worker was started (pdp serve checks it too)
    pep, _ = authenticators(settings)
    service = PDPService.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.info("serving policy set %s from %s", service.policies.current.version,
                 service.policies.current.directory)
        service.start()  # entity store poller, decision-log writer
        try:
            yield
        finally:
            service.close()

    app = create_app(service, lifespan=lifespan)
    # Outermost: the Host allow-list and the address each request actually arrived on.
    exposure = Exposure(settings, authenticated=pep.enabled or settings.tls_client_ca is not None)
    app.add_middleware(ExposureMiddleware, exposure=exposure)
    lane = getattr(app.state, "direct_lane", None)
    if isinstance(lane, DirectLane) and settings.http_lane == "direct":  # see pdp.http.direct
        app.direct_lane = lane.behind(exposure)  # type: ignore[attr-defined]
    return app


