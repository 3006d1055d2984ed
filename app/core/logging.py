"""Structured logs (structlog) with a request id on every line.

Only metadata is logged: method, route, status, duration, ids. Never bodies, never headers,
so no password, token or goal text can reach a log line.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import traceback
import uuid
from typing import Any

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import Settings

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
access_log = structlog.get_logger("waypoint.access")
error_log = structlog.get_logger("waypoint.errors")
_INTERNAL_ERROR = orjson.dumps(
    {"type": "/problems/internal-error", "title": "Internal server error", "status": 500}
)


def internal_error_start() -> Message:
    return {
        "type": "http.response.start",
        "status": 500,
        "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(_INTERNAL_ERROR)).encode()),
        ],
    }


def internal_error_body() -> Message:
    return {"type": "http.response.body", "body": _INTERNAL_ERROR}


class _Stdout:
    """sys.stdout looked up at each write, so a replaced stdout (tests, reloaders) is honoured."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


_STDOUT = _Stdout()


def configure_logging(settings: Settings) -> None:
    """One JSON object per line on stdout, for our own lines and for the standard library's
    (uvicorn, SQLAlchemy warnings) alike; each carries the request id while a request runs."""
    level = logging.getLevelName(settings.log_level.upper())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.log_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=_STDOUT),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(_STDOUT)  # type: ignore[arg-type]
    handler.set_name("waypoint")
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != "waypoint"] + [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # RequestContextMiddleware writes the access line (route template, no query string).
    logging.getLogger("uvicorn.access").handlers = []
    logging.getLogger("uvicorn.access").propagate = False
    # httpx logs every URL it calls at INFO; webhook URLs can carry their owner's secrets.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))


class RequestContextMiddleware:
    """Gives each request an id (``X-Request-ID``) and writes one access line when it ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        status_sent = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, status_sent
            if message["type"] == "http.response.start":
                status = message["status"]
                status_sent = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Handled here, inside the request's log context, rather than by Starlette's
            # outermost error middleware: the line keeps its request id and the client gets
            # problem+json. Logged: the exception type and code locations, never its message
            # or locals (they can hold SQL parameters, i.e. a user's text).
            error_log.error(
                "unhandled_error",
                error_type=f"{type(exc).__module__}.{type(exc).__qualname__}",
                stack=traceback.format_list(traceback.extract_tb(exc.__traceback__)),
            )
            if status_sent:
                return
            await send_with_id(internal_error_start())
            await send_with_id(internal_error_body())
        finally:
            access_log.info(
                "request",
                method=scope["method"],
                route=route_template(scope),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            structlog.contextvars.clear_contextvars()


UNMATCHED_ROUTE = "unmatched"  # the route of a path no route answers (never the raw path)


def route_template(scope: Scope) -> str:
    """The matched path template (``/v1/goals/{goal_id}``): ids stay out of the log line and
    the metrics' route labels stay a bounded set."""
    # FastAPI 0.16x matches included routers lazily; the full template is on its route context.
    context = (scope.get("fastapi") or {}).get("effective_route_context")
    template = getattr(context, "path_format", None)
    if template:
        return template
    route = scope.get("route")
    template = getattr(route, "path", None)
    if template:
        return template
    # Routes added with ``app.add_route`` (/metrics, /docs) are plain Starlette routes: FastAPI's
    # router leaves no ``route`` in the scope for them, only their ``endpoint`` (also on a 405).
    # Looked up only for those few, low-rate routes; a 404 has no endpoint and skips the scan.
    endpoint = scope.get("endpoint")
    router = scope.get("router")
    if endpoint is not None and router is not None:
        for candidate in router.routes:
            if getattr(candidate, "endpoint", None) is endpoint:
                return candidate.path
    return UNMATCHED_ROUTE
