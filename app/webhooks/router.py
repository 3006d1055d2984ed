"""Webhooks, for integrators that want to be told instead of polling (docs/integrators.md,
"Webhooks")."""

from __future__ import annotations

from fastapi import Request, Response, status

from app.auth.dependencies import CurrentPrincipal
from app.auth.routing import domain_router
from app.core.errors import problem_responses
from app.core.http import set_next_link
from app.core.pagination import Cursor, Limit
from app.core.sessions import SessionDep
from app.webhooks import service
from app.webhooks.schemas import DeliveryPage, WebhookCreate, WebhookCreated, WebhookPage

router = domain_router(tags=["webhooks"])


@router.post(
    "/webhooks",
    operation_id="webhooks_create",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    responses=problem_responses(401, 422),
)
async def create_webhook(
    data: WebhookCreate, response: Response, principal: CurrentPrincipal, session: SessionDep
) -> WebhookCreated:
    """Subscribe `url` to `events` about the data you may see. The `secret` that signs every
    delivery is shown in this answer only."""
    created = await service.create_webhook(session, principal, data)
    response.headers["Location"] = f"/v1/webhooks/{created.id}"
    return created


@router.get(
    "/webhooks",
    operation_id="webhooks_list",
    response_model=WebhookPage,
    responses=problem_responses(400, 401, 422),
)
async def list_webhooks(
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> WebhookPage:
    """Your webhooks, newest first, without their secrets; `active` is false once disabled."""
    items, next_cursor = await service.list_webhooks(session, principal, limit, cursor)
    set_next_link(request, response, next_cursor)
    return WebhookPage(items=items, next_cursor=next_cursor)


@router.delete(
    "/webhooks/{webhook_id}",
    operation_id="webhooks_delete",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 404),
)
async def delete_webhook(
    webhook_id: str, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    """Unsubscribe; deliveries not yet made are dropped."""
    await service.delete_webhook(session, principal, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    operation_id="webhooks_deliveries_list",
    response_model=DeliveryPage,
    responses=problem_responses(400, 401, 404, 422),
)
async def list_deliveries(
    webhook_id: str,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> DeliveryPage:
    """The webhook's deliveries, newest first: pending ones with their next attempt."""
    items, next_cursor = await service.list_deliveries(
        session, principal, webhook_id, limit, cursor
    )
    set_next_link(request, response, next_cursor)
    return DeliveryPage(items=items, next_cursor=next_cursor)
