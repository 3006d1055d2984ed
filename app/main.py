"""create_app(): middleware, routers, error handlers, and what ``app.wiring`` lists."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from sqlalchemy import event as sa_event

from app.api import ROUTERS, add_routes
from app.auth.sessions import account_is_gone
from app.core.admission import AdmissionMiddleware
from app.core.background import BackgroundWorker, running_background_workers
from app.core.body_limit import BodyLimitMiddleware
from app.core.config import settings_or_exit
from app.core.constraints import install_constraint_answers
from app.core.docs import install_docs
from app.core.engines import dispose_engines
from app.core.errors import install_error_handlers
from app.core.faults import install_fault_handlers
from app.core.logging import RequestContextMiddleware, configure_logging
from app.core.metrics import (
    RequestMetricsMiddleware,
    allowed_networks,
    mark_worker_gone,
    metrics_endpoint,
)
from app.core.openapi import build_openapi
from app.core.query_bounds import QueryStringLimitMiddleware
from app.core.security import dummy_password_hash
from app.idempotency.service import IdempotentReplay, replay_response
from app.models import metadata
from app.wiring import (
    AFTER_REGISTRATION,
    BACKGROUND_WORKERS,
    BEFORE_COMMIT,
    SCRAPE_HOOKS,
    SESSION_LISTENERS,
)

DESCRIPTION = """
Waypoint turns "what would you like to have achieved?" into goals, small steps, regular
reviews and encouragement, shared between a person in therapy and their therapist.

Errors are RFC 9457 `application/problem+json`. Lists are keyset-paginated
(`next_cursor`, `Link: rel="next"`). Single objects carry an `ETag`; writes honour `If-Match`.
Every POST accepts `Idempotency-Key`.
"""


def _operation_id(route: APIRoute) -> str:
    return route.name


def _lifespan(
    workers: Sequence[BackgroundWorker],
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Computed now, so the first login with an unknown e-mail costs no more than any other.
        await anyio.to_thread.run_sync(dummy_password_hash)
        # What start-up built (modules, routes, models, validators) lives as long as the
        # process. Left in the collector's view, every full collection walked all of it: a
        # pause that stalled every request in flight, the whole p99 of a busy worker (figures
        # in bench/README.md, "Figures behind the code's comments").
        gc.collect()
        gc.freeze()
        # The workers are stopped after uvicorn has let in-flight requests finish (SIGTERM).
        async with running_background_workers(workers):
            yield
        await dispose_engines()
        mark_worker_gone()

    return lifespan


def _listen(listeners: Sequence[tuple[Any, str, Callable[..., Any]]]) -> None:
    """Attach process-wide listeners once, however many apps the process creates."""
    for target, name, listener in listeners:
        if not sa_event.contains(target, name, listener):
            sa_event.listen(target, name, listener)


def create_app() -> FastAPI:
    settings = settings_or_exit()
    configure_logging(settings)
    _ = settings.signing_key  # fail at start, not at the first login, if the key is unusable
    app = FastAPI(
        title="Waypoint API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=_lifespan(BACKGROUND_WORKERS),
        generate_unique_id_function=_operation_id,
        swagger_ui_parameters={"persistAuthorization": True},
        docs_url=None,  # install_docs: served without a CDN
        redoc_url=None,
    )
    install_docs(app)
    app.state.before_commit = BEFORE_COMMIT  # the unit of work's hooks, in order
    app.state.after_registration = AFTER_REGISTRATION
    _listen(SESSION_LISTENERS)
    install_error_handlers(app)
    install_fault_handlers(app)
    install_constraint_answers(app, metadata, account_is_gone)
    app.add_exception_handler(IdempotentReplay, replay_response)
    add_routes(app, *ROUTERS)
    # Not in the OpenAPI document: an operator's endpoint (docs/operators.md, "Metrics").
    app.add_route(
        "/metrics",
        metrics_endpoint(allowed_networks(settings.metrics_allow), SCRAPE_HOOKS),
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
    app.add_middleware(QueryStringLimitMiddleware)
    app.add_middleware(RequestMetricsMiddleware)
    app.add_middleware(RequestContextMiddleware)
    return app
