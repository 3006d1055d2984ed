"""Typed errors and the handlers that render every error as RFC 9457 problem+json."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = structlog.get_logger("waypoint.errors")


class ValidationItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(examples=["/problems/not-found"])
    title: str
    status: int
    detail: str | None = None
    errors: list[ValidationItem] | None = None


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


class ProblemError(Exception):
    status = 500
    slug = "internal-error"
    title = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = headers
        self.errors = errors


class BadRequest(ProblemError):
    status, slug, title = 400, "bad-request", "Bad request"


class Unauthorized(ProblemError):
    status, slug, title = 401, "unauthorized", "Not authenticated"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class InsufficientScope(ProblemError):
    status, slug, title = 403, "insufficient-scope", "Insufficient scope"


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflict"


class CursorExpired(ProblemError):
    """A sync cursor older than the history the server keeps: start over without it."""

    status, slug, title = 410, "cursor-expired", "Cursor expired"


class PreconditionFailed(ProblemError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(ProblemError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class ValidationFailed(ProblemError):
    status, slug, title = 422, "validation-error", "Validation failed"

    def __init__(self, detail: str, loc: list[str | int] | None = None) -> None:
        errors = [{"loc": loc, "msg": detail, "type": "value_error"}] if loc else None
        super().__init__(detail, errors=errors)


class RateLimited(ProblemError):
    status, slug, title = 429, "rate-limited", "Too many requests"


class InvalidAccountToken(ProblemError):
    """A link's token that opens nothing on this route: used, expired, superseded, unknown,
    of another kind, or malformed."""

    status, slug, title = 400, "invalid-token", "Invalid token"


class EmailNotVerified(ProblemError):
    status, slug, title = 403, "email-not-verified", "E-mail address not verified"


class ServiceUnavailable(ProblemError):
    """The database is unreachable, slow or locked, or the worker is overloaded: nothing was
    done, and the same request may succeed after ``Retry-After`` seconds."""

    status, slug, title = 503, "service-unavailable", "Service unavailable"

    def __init__(self, detail: str | None = None, retry_after: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> ProblemResponse:
    body: dict[str, Any] = {"type": f"/problems/{slug}", "title": title, "status": status}
    if detail is not None:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    return ProblemResponse(body, status_code=status, headers=headers)


STATUS_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Not authenticated"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    410: ("gone", "Gone"),
    412: ("precondition-failed", "Precondition failed"),
    413: ("payload-too-large", "Payload too large"),
    414: ("uri-too-long", "URI too long"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-error", "Validation failed"),
    429: ("rate-limited", "Too many requests"),
    503: ("service-unavailable", "Service unavailable"),
}


def _clean_validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Never echo "input" or "ctx": they can carry a password or the text of a goal.
    return [
        {
            "loc": [part if isinstance(part, int) else str(part) for part in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "value_error")),
        }
        for err in exc.errors()
    ]


def _summary(errors: list[dict[str, Any]]) -> str:
    first = errors[0] if errors else None
    if not first:
        return "The request is not valid."
    field = ".".join(str(p) for p in first["loc"][1:]) or ".".join(str(p) for p in first["loc"])
    return f"{field}: {first['msg']}" if field else first["msg"]


async def _problem_error(_: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
        exc.status, exc.slug, exc.title, exc.detail, errors=exc.errors, headers=exc.headers
    )


async def _validation_error(_: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _clean_validation_errors(exc)
    return problem_response(
        422, "validation-error", "Validation failed", _summary(errors), errors=errors
    )


async def _http_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    slug, title = STATUS_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
    if exc.status_code >= 500:
        slug, title = "internal-error", "Internal server error"
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return problem_response(exc.status_code, slug, title, detail, headers=headers)


# Routes by this name exist only to answer 405 (reviews are append-only): not a method that is
# allowed.
REFUSING_ROUTE_NAME = "method_not_allowed"
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on this path (the router only names the first route's)."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(
            route.matches(scope)[0] is Match.FULL
            and getattr(route, "name", None) != REFUSING_ROUTE_NAME
            for route in request.app.routes
        ):
            allowed.append(method)
    return allowed


async def _unhandled_error(request: Request, exc: Exception) -> ProblemResponse:
    log.error("unhandled_error", error_type=type(exc).__name__, path=request.url.path)
    return problem_response(500, "internal-error", "Internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _problem_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled_error)


def _header(description: str, type_: str = "string") -> dict[str, Any]:
    return {"description": description, "schema": {"type": type_}}


RESPONSE_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": _header("Always `Bearer`.")},
    429: {
        "Retry-After": _header("Seconds until a new attempt can succeed.", "integer"),
        "RateLimit-Limit": _header("Failures allowed in the window.", "integer"),
        "RateLimit-Remaining": _header("Failures left in the window.", "integer"),
        "RateLimit-Reset": _header("Seconds until the window frees a slot.", "integer"),
    },
    503: {"Retry-After": _header("Seconds after which the request may be tried again.", "integer")},
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries declaring problem+json for each status."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        responses[status] = {
            "model": Problem,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            "description": STATUS_SLUGS.get(status, ("", "Error"))[1],
        }
        if status in RESPONSE_HEADERS:
            responses[status]["headers"] = RESPONSE_HEADERS[status]
    return responses
