"""Route classes: every API route runs in a unit of work; authenticated ones say so here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Security

from app.auth.dependencies import authenticate
from app.core.unit_of_work import UnitOfWorkRoute
from app.idempotency.service import check_idempotency_key


class PublicRoute(UnitOfWorkRoute):
    """Routes that need no token (register, token)."""


class AuthenticatedRoute(UnitOfWorkRoute):
    """Authenticated by default; every POST also accepts ``Idempotency-Key``."""

    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        dependencies = list(kwargs.pop("dependencies", None) or [])
        dependencies.insert(0, Security(authenticate))
        if "POST" in (kwargs.get("methods") or ()):
            dependencies.append(Depends(check_idempotency_key))
        super().__init__(path, endpoint, dependencies=dependencies, **kwargs)


API_PREFIX = "/v1"


def domain_router(*, tags: list[str], public: bool = False) -> APIRouter:
    """A domain's router: its paths under ``/v1``, authenticated unless ``public``."""
    return APIRouter(
        prefix=API_PREFIX, route_class=PublicRoute if public else AuthenticatedRoute, tags=tags
    )
