"""Notification settings, the in-app feed, and the reminder e-mails' one-click unsubscribe."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request, Response, status

from app.auth.dependencies import CurrentPrincipal
from app.auth.routing import domain_router
from app.core.errors import problem_responses
from app.core.http import json_response, page_response
from app.core.pagination import Cursor, Limit
from app.core.sessions import SessionDep
from app.notifications import service
from app.notifications.schemas import (
    NotificationOut,
    NotificationPage,
    NotificationSettingsOut,
    NotificationSettingsUpdate,
)

router = domain_router(tags=["notifications"])
public_router = domain_router(tags=["notifications"], public=True)


@router.get(
    "/me/notification-settings",
    operation_id="notification_settings_read",
    response_model=NotificationSettingsOut,
    responses=problem_responses(401),
)
async def read_settings(principal: CurrentPrincipal, session: SessionDep) -> Response:
    """The caller's reminder and alert choices (the defaults until changed)."""
    return json_response(await service.read_settings(session, principal))


@router.patch(
    "/me/notification-settings",
    operation_id="notification_settings_update",
    response_model=NotificationSettingsOut,
    responses=problem_responses(401, 422),
)
async def update_settings(
    data: NotificationSettingsUpdate, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    """Change any of the settings (`reminder_hour` 0..23, in the account's own timezone);
    unknown fields and nulls: 422. The next reminder follows the new hour at once."""
    return json_response(await service.update_settings(session, principal, data))


@router.get(
    "/notifications",
    operation_id="notifications_list",
    response_model=NotificationPage,
    responses=problem_responses(400, 401, 422),
)
async def list_notifications(
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    unread: Annotated[
        bool | None, Query(description="`true`: only unread; `false`: only read.")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """The caller's review reminders and lagging alerts, newest first (keyset on
    `created_at`, `id`)."""
    items, next_cursor = await service.list_notifications(
        session, principal, unread=unread, limit=limit, cursor=cursor
    )
    return page_response(request, items, next_cursor)


@router.post(
    "/notifications/{notification_id}/read",
    operation_id="notifications_mark_read",
    response_model=NotificationOut,
    responses=problem_responses(401, 404),
)
async def mark_read(
    notification_id: str, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    """The recipient marks it read; idempotent (`read_at` keeps the first time). Another
    account's notification: 404."""
    return json_response(await service.mark_read(session, principal, notification_id))


@public_router.post(
    "/notifications/unsubscribe/{token}",
    operation_id="notifications_unsubscribe",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(400, 422),
)
async def unsubscribe(
    token: Annotated[str, Path(max_length=200, description="From a reminder's unsubscribe link.")],
    session: SessionDep,
) -> Response:
    """One-click unsubscribe (RFC 8058), the `List-Unsubscribe` link of reminder e-mails: no
    login, any body (mail clients send `List-Unsubscribe=One-Click`). Turns
    `review_reminders` off. A link that is not valid: 400 `invalid-token`."""
    await service.unsubscribe(session, token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
