"""create_app(): middleware, routers, error handlers."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

import app.webhooks.queue_metrics  # noqa: F401  (registers its scrape-time gauges)
import app.webhooks.worker  # noqa: F401  (registers its background worker)
from app.api import ROUTERS, add_routes
from app.commit_hooks import BEFORE_COMMIT
from app.core.admission import AdmissionMiddleware
from app.core.background import running_background_workers
from app.core.body_limit import BodyLimitMiddleware
from app.core.config import settings_or_exit
from app.core.docs import install_docs
from app.core.engines import dispose_engines
from app.core.errors import install_error_handlers
from app.core.logging import RequestContextMiddleware, configure_logging
from app.core.metrics import (
    RequestMetricsMiddleware,
    allowed_networks,
    mark_worker_gone,
    metrics_endpoint,
)
from app.core.openapi import build_openapi
from app.core.security import dummy_password_hash
from app.idempotency.service import IdempotentReplay, replay_response

DESCRIPTION = """
Waypoint turns "what would you like to have achieved?" into goals, small steps, regular
reviews and encouragement, shared between a person in therapy and their therapist.

Errors are RFC 9457 `application/problem+json`. Lists are keyset-paginated
(`next_cursor`, `Link: rel="next"`). Single objects carry an `ETag`; writes honour `If-Match`.
Every POST accepts `Idempotency-Key`.
"""


def _operation_id(route: APIRoute) -> str:
    return route.name


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    # Computed now, so the first login with an unknown e-mail costs no more than any other.
    await anyio.to_thread.run_sync(dummy_password_hash)
    # What start-up built (modules, routes, models, validators: about 130,000 objects) lives as
    # long as the process. Left in the collector's view, every full collection walked all of it:
    # a pause of 60-90 ms that stalled every request in flight, the whole p99 of a busy worker.
    gc.collect()
    gc.freeze()
    # Background workers (webhook delivery, ...) register with app.core.background; they are
    # stopped after uvicorn has let in-flight requests finish (SIGTERM, see README).
    async with running_background_workers():
        yield
    await dispose_engines()
    mark_worker_gone()


def create_app() -> FastAPI:
    settings = settings_or_exit()
    configure_logging(settings)
    _ = settings.signing_key  # fail at start, not at the first login, if the key is unusable
    app = FastAPI(
        title="Waypoint API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        swagger_ui_parameters={"persistAuthorization": True},
        docs_url=None,  # install_docs: served without a CDN
        redoc_url=None,
    )
    install_docs(app)
    app.state.before_commit = BEFORE_COMMIT  # the unit of work's hooks, in order
    install_error_handlers(app)
    app.add_exception_handler(IdempotentReplay, replay_response)
    add_routes(app, *ROUTERS)
    if settings.enable_bench_routes:
        from app.bench_routes import router as bench_router

        add_routes(app, bench_router)
    # Not in the OpenAPI document: an operator's endpoint (README, "Operating Waypoint").
    app.add_route(
        "/metrics",
        metrics_endpoint(allowed_networks(settings.metrics_allow)),
        methods=["GET"],
        include_in_schema=False,
    )
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "Idempotency-Key",
                "X-Request-ID",
            ],
            expose_headers=["ETag", "Location", "Link", "Retry-After", "X-Request-ID"],
        )
    # Innermost first: a request is admitted only once its body is in (a slow upload holds no
    # turn), and the request log's duration and the metrics include the wait for a turn.
    app.add_middleware(
        AdmissionMiddleware,
        limit=settings.max_concurrent_requests,
        max_wait_ms=settings.max_queue_wait_ms,
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetricsMiddleware)
    app.add_middleware(RequestContextMiddleware)
    return app
