"""Routes of section "getting back into an account": links by e-mail, password change,
change of address, sessions."""

from __future__ import annotations

from fastapi import Request, Response, status

from app.account import service
from app.account.schemas import (
    Accepted,
    ChangeEmailRequest,
    ChangePasswordRequest,
    LinkTokenRequest,
    PasswordResetConfirm,
    PasswordResetRequest,
    SessionList,
    SessionOut,
)
from app.auth.dependencies import CurrentPrincipal
from app.auth.routing import domain_router
from app.core.errors import RESPONSE_HEADERS, problem_responses
from app.core.schemas import parse_object_id
from app.core.sessions import SessionDep

public_router = domain_router(tags=["account"], public=True)
router = domain_router(tags=["account"])

RESET_ACCEPTED = "If an account has this address, a link to reset its password is on its way."
# A 202 of a rate-limited route tells how many requests are left.
THROTTLED_202 = {
    202: {"headers": {k: v for k, v in RESPONSE_HEADERS[429].items() if k != "Retry-After"}}
}


def _network(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _no_content() -> Response:
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@public_router.post(
    "/auth/password-reset",
    operation_id="auth_password_reset",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses={**THROTTLED_202, **problem_responses(422, 429)},
)
async def request_password_reset(
    data: PasswordResetRequest, request: Request, response: Response, session: SessionDep
) -> Accepted:
    """Send a link to reset the password (valid one hour) when an account has this address.
    The answer is the same whether or not one does."""
    throttle = await service.request_password_reset(session, data.email, _network(request))
    response.headers.update(throttle.headers())
    return Accepted(detail=RESET_ACCEPTED)


@public_router.post(
    "/auth/password-reset/confirm",
    operation_id="auth_password_reset_confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 422),
)
async def confirm_password_reset(data: PasswordResetConfirm, session: SessionDep) -> Response:
    """Set a new password with the link's token; every session of the account ends
    (personal access tokens go on)."""
    await service.confirm_password_reset(session, data.token, data.new_password)
    return _no_content()


@public_router.post(
    "/auth/verify-email",
    operation_id="auth_verify_email",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 422),
)
async def verify_email(data: LinkTokenRequest, session: SessionDep) -> Response:
    """Mark the account's address verified with the link's token."""
    await service.verify_email(session, data.token)
    return _no_content()


@public_router.post(
    "/auth/confirm-email",
    operation_id="auth_confirm_email",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 409, 422),
)
async def confirm_email(data: LinkTokenRequest, session: SessionDep) -> Response:
    """Change the account's address to the one the link was sent to (now verified)."""
    await service.confirm_email(session, data.token)
    return _no_content()


@router.post(
    "/me/password",
    operation_id="me_password_change",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 422, 429),
)
async def change_password(
    data: ChangePasswordRequest, request: Request, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    """Change the password: every other session ends, this one goes on; a notice goes to the
    account's address. A wrong current password counts as a failed login."""
    await service.change_password(
        session, principal, data.current_password, data.new_password, _network(request)
    )
    return _no_content()


@router.post(
    "/me/verify-email",
    operation_id="me_verify_email",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses={**THROTTLED_202, **problem_responses(401, 409, 429)},
)
async def resend_verification(
    response: Response, principal: CurrentPrincipal, session: SessionDep
) -> Accepted:
    """Send a new link to verify the account's address (valid 7 days)."""
    throttle = await service.resend_verification(session, principal)
    response.headers.update(throttle.headers())
    return Accepted(detail="A link to verify your address is on its way.")


@router.post(
    "/me/email",
    operation_id="me_email_change",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=problem_responses(401, 403, 409, 422, 429),
)
async def change_email(
    data: ChangeEmailRequest, request: Request, principal: CurrentPrincipal, session: SessionDep
) -> Accepted:
    """Ask to change the address: the new one receives a link to confirm it (valid 24
    hours), the current one a notice. Nothing changes until the link is followed."""
    await service.change_email(
        session, principal, data.new_email, data.current_password, _network(request)
    )
    return Accepted(detail="A link to confirm the new address is on its way to it.")


@router.get(
    "/me/sessions",
    operation_id="me_sessions_list",
    response_model=SessionList,
    responses=problem_responses(401),
)
async def list_sessions(principal: CurrentPrincipal, session: SessionDep) -> SessionList:
    """The account's live password-login sessions (not personal access tokens), newest
    first."""
    rows = await service.list_sessions(session, principal)
    return SessionList(items=[SessionOut(**row) for row in rows])


@router.delete(
    "/me/sessions/{session_id}",
    operation_id="me_sessions_delete",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 404),
)
async def end_session(
    session_id: str, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    """End a session: its tokens stop working at once."""
    await service.end_session(session, principal, parse_object_id(session_id))
    return _no_content()
