"""Route classes: every API route runs in a unit of work; authenticated ones say so here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request, Response, Security, params
from fastapi.dependencies.models import Dependant

from app.auth.dependencies import CurrentPrincipal, authenticate
from app.core.errors import problem_responses
from app.core.query_bounds import refuse_repeated_parameters
from app.core.strict_json import parse_json_body
from app.core.unit_of_work import UnitOfWorkRoute
from app.idempotency.service import IdempotencyKeyHeader, check_idempotency_key


async def idempotent_post(
    request: Request, principal: CurrentPrincipal, idempotency_key: IdempotencyKeyHeader = None
) -> None:
    """The ``Idempotency-Key`` of an authenticated POST, checked for its caller."""
    await check_idempotency_key(request, principal.user_id, idempotency_key)


def _query_parameter_names(dependant: Dependant) -> set[str]:
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_parameter_names(sub)
    return names


class StrictJsonRoute(UnitOfWorkRoute):
    """A JSON body with a key given twice, nested too deep or too wide, and a query parameter
    given twice are refused (422) before anything else runs."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()
        names = sorted(_query_parameter_names(self.dependant))
        # Only a route that reads a JSON body parses one: the others never look at it.
        reads_json = self.body_field is not None and not isinstance(
            self.body_field.field_info, params.Form
        )

        async def strict_json_handler(request: Request) -> Response:
            refuse_repeated_parameters(request, names)
            if reads_json:
                await parse_json_body(request)
            return await handler(request)

        return strict_json_handler


class PublicRoute(StrictJsonRoute):
    """Routes that need no token (register, token)."""


class AuthenticatedRoute(StrictJsonRoute):
    """Authenticated by default; every POST also accepts ``Idempotency-Key``."""

    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        dependencies = list(kwargs.pop("dependencies", None) or [])
        dependencies.insert(0, Security(authenticate))
        if "POST" in (kwargs.get("methods") or ()):
            dependencies.append(Depends(idempotent_post))
            # An Idempotency-Key reused with another body is 409 on every POST.
            kwargs["responses"] = {**problem_responses(409), **(kwargs.get("responses") or {})}
        super().__init__(path, endpoint, dependencies=dependencies, **kwargs)


API_PREFIX = "/v1"


def domain_router(*, tags: list[str], public: bool = False) -> APIRouter:
    """A domain's router: its paths under ``/v1``, authenticated unless ``public``."""
    return APIRouter(
        prefix=API_PREFIX, route_class=PublicRoute if public else AuthenticatedRoute, tags=tags
    )
