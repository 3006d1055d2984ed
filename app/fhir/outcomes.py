"""Errors under ``/v1/fhir/`` as FHIR ``OperationOutcome`` (``application/fhir+json``).

The FHIR routes use ``FhirRoute`` / ``PublicFhirRoute``: the same unit of work and token
check as every route, but a typed error (401, 403, 404, a bad cursor...) or a request that
fails validation is answered as an OperationOutcome with the same status (validation: 400, as
FHIR servers answer a search they cannot process). 404 hides what the caller may not see,
exactly as the JSON API does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.auth.routing import AuthenticatedRoute, PublicRoute
from app.core.errors import ProblemError
from app.core.http import dumps
from app.fhir.schemas import OperationOutcome

FHIR_JSON = "application/fhir+json"
ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    412: "conflict",
    422: "invalid",
    429: "throttled",
}
DESCRIPTIONS = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
}


class FhirResponse(JSONResponse):
    """JSON (rendered by the API's ``dumps``) as ``application/fhir+json``; a JSON response
    class, so OpenAPI documents the route's model under that media type."""

    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        return dumps(content)


def fhir_response(content: Any, headers: dict[str, str] | None = None) -> FhirResponse:
    return FhirResponse(content, headers=headers)


def outcome_response(
    status: int, diagnostics: str, headers: dict[str, str] | None = None
) -> FhirResponse:
    issue = {"severity": "error", "code": ISSUE_CODES.get(status, "exception")}
    issue["diagnostics"] = diagnostics
    body = {"resourceType": "OperationOutcome", "issue": [issue]}
    return FhirResponse(body, status_code=status, headers=headers)


def outcome_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries: each status answers an OperationOutcome."""
    return {
        status: {"model": OperationOutcome, "description": DESCRIPTIONS.get(status, "Error")}
        for status in statuses
    }


def _validation_summary(exc: RequestValidationError) -> str:
    first = next(iter(exc.errors()), None)
    if not first:
        return "The request is not valid."
    where = ".".join(str(part) for part in first.get("loc", ())[1:])
    return f"{where}: {first.get('msg', 'not valid')}" if where else str(first.get("msg"))


def _answering_outcomes(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except ProblemError as exc:
            return outcome_response(exc.status, exc.detail or exc.title, exc.headers)
        except RequestValidationError as exc:
            return outcome_response(400, _validation_summary(exc))

    return run


class FhirRoute(AuthenticatedRoute):
    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        return _answering_outcomes(super().get_route_handler())


class PublicFhirRoute(PublicRoute):
    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        return _answering_outcomes(super().get_route_handler())
