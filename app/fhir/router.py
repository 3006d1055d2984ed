"""FHIR R4 (docs/integrators.md, "FHIR R4"): goals as FHIR ``Goal`` resources, in
``application/fhir+json``."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.auth.dependencies import principal_with
from app.auth.routing import API_PREFIX
from app.auth.scopes import Scope
from app.core.errors import REFUSING_ROUTE_NAME, NotFound, ProblemError
from app.core.openapi import NO_VALIDATION_ERROR
from app.core.schemas import PlainText
from app.core.sessions import SessionDep
from app.fhir import service
from app.fhir.capabilities import capability_statement
from app.fhir.outcomes import (
    FhirResponse,
    FhirRoute,
    PublicFhirRoute,
    fhir_response,
    outcome_responses,
)
from app.fhir.schemas import FhirCapabilityStatement, FhirGoal, FhirGoalBundle
from app.goals.dependencies import ReadableGoal

Reader = principal_with(Scope.GOALS_READ)
router = APIRouter(prefix=API_PREFIX, route_class=FhirRoute, tags=["fhir"])
public_router = APIRouter(prefix=API_PREFIX, route_class=PublicFhirRoute, tags=["fhir"])
NO_422 = {NO_VALIDATION_ERROR: True}


@public_router.get(
    "/fhir/metadata",
    operation_id="fhir_metadata",
    response_model=FhirCapabilityStatement,
    response_class=FhirResponse,
)
async def metadata(request: Request) -> Response:
    """The server's CapabilityStatement: FHIR R4, Goal read and search by `patient`."""
    return fhir_response(capability_statement(str(request.base_url).rstrip("/")))


@router.get(
    "/fhir/Goal/{goal_id}",
    operation_id="fhir_goal_read",
    response_model=FhirGoal,
    response_class=FhirResponse,
    responses=outcome_responses(401, 403, 404),
    openapi_extra=NO_422,
)
async def read_goal(goal: ReadableGoal, principal: Reader, session: SessionDep) -> Response:
    """A goal you may see as a FHIR Goal (docs/integrators.md has the mapping)."""
    resource = service.read_goal(session, principal, goal)
    return fhir_response(resource, headers={"ETag": f'W/"{goal.version}"'})


@router.get(
    "/fhir/Goal",
    operation_id="fhir_goal_search",
    response_model=FhirGoalBundle,
    response_class=FhirResponse,
    responses=outcome_responses(400, 401, 403),
    openapi_extra=NO_422,
)
async def search_goals(
    request: Request,
    principal: Reader,
    session: SessionDep,
    patient: Annotated[
        str | None,
        PlainText,
        Query(description="`<client id>` or `Patient/<client id>`.", max_length=100),
    ] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=200, description="Page size.")] = 50,
    cursor: Annotated[
        str | None, Query(alias="_cursor", max_length=512, description="From a `next` link.")
    ] = None,
) -> Response:
    """The goals you may see (of one patient), most recently updated first, as a `searchset`
    Bundle; its `next` link gives the next page."""
    goals, next_cursor = await service.search_goals(
        session, principal, patient=patient, count=count, cursor=cursor
    )
    base = str(request.base_url).rstrip("/")
    links = [{"relation": "self", "url": str(request.url)}]
    if next_cursor is not None:
        links.append(
            {"relation": "next", "url": str(request.url.include_query_params(_cursor=next_cursor))}
        )
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base}{API_PREFIX}/fhir/Goal/{goal['id']}",
                "resource": goal,
                "search": {"mode": "match"},
            }
            for goal in goals
        ],
    }
    return fhir_response(bundle)


_KNOWN = re.compile(r"^(Goal(/[^/]+)?|metadata)$")


class MethodNotAllowed(ProblemError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


@public_router.api_route(
    "/fhir/{rest:path}",
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
    name=REFUSING_ROUTE_NAME,  # it allows nothing: not counted in a 405's Allow
)
async def anything_else(rest: str) -> Response:
    """Every other path under /v1/fhir/ answers an OperationOutcome too."""
    if _KNOWN.match(rest):
        raise MethodNotAllowed("This server only reads.", headers={"Allow": "GET"})
    raise NotFound("This server has no such FHIR resource or interaction.")
