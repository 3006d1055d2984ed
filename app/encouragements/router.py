"""Encouragements: notes and the system's celebrations."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, Request, Response, status

from app.auth.dependencies import principal_with
from app.auth.routing import domain_router
from app.auth.scopes import Scope
from app.core.errors import problem_responses
from app.core.http import json_response, page_response
from app.core.pagination import Cursor, Limit
from app.core.sessions import SessionDep
from app.encouragements import service
from app.encouragements.documents import encouragement_document
from app.encouragements.schemas import EncouragementCreate, EncouragementOut, EncouragementPage

router = domain_router(tags=["encouragements"])
Reader = principal_with(Scope.ENCOURAGEMENTS_READ)
Writer = principal_with(Scope.ENCOURAGEMENTS_WRITE)


@router.post(
    "/encouragements",
    operation_id="encouragements_create",
    status_code=status.HTTP_201_CREATED,
    response_model=EncouragementOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def send_encouragement(
    data: EncouragementCreate, principal: Writer, session: SessionDep
) -> Response:
    """Send a note (`kind: "note"`): a therapist to a linked client (`client_id` required), a
    client to themself ("be your own cheerleader": `client_id` omitted or their own). Any other
    `client_id`, and a `goal_id`/`step_id` that is not that client's or that the sender may not
    read, answers 404."""
    note = await service.send(session, principal, data)
    return json_response(encouragement_document(note), status.HTTP_201_CREATED)


@router.get(
    "/encouragements",
    operation_id="encouragements_list",
    response_model=EncouragementPage,
    responses=problem_responses(400, 401, 403, 422),
)
async def list_encouragements(
    request: Request,
    principal: Reader,
    session: SessionDep,
    goal_id: Annotated[uuid.UUID | None, Query(description="Only those about this goal.")] = None,
    unread: Annotated[
        bool | None, Query(description="`true`: only unread; `false`: only read.")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """A client: everything they received (notes and celebrations). A therapist: the notes they
    sent to clients they are still linked with. Encouragements about a deleted goal are gone.
    Newest first (keyset on `created_at`, `id`)."""
    items, next_cursor = await service.list_encouragements(
        session, principal, goal_id=goal_id, unread=unread, limit=limit, cursor=cursor
    )
    return page_response(request, items, next_cursor)


@router.post(
    "/encouragements/{encouragement_id}/read",
    operation_id="encouragements_mark_read",
    response_model=EncouragementOut,
    responses=problem_responses(401, 403, 404, 409),
)
async def mark_read(encouragement_id: str, principal: Writer, session: SessionDep) -> Response:
    """The recipient marks it read (anyone else: 404). Idempotent: `read_at` keeps the time of
    the first call."""
    note = await service.mark_read(session, principal, encouragement_id)
    return json_response(encouragement_document(note))
