from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Form, Request, Response, status
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app.auth import service
from app.auth.dependencies import CurrentPrincipal
from app.auth.routing import PublicRoute, domain_router
from app.auth.schemas import (
    CreatePersonalTokenRequest,
    OAuthError,
    PersonalTokenCreated,
    PersonalTokenOut,
    PersonalTokenPage,
    RegisterRequest,
    TokenResponse,
    UpdateMeRequest,
    UserOut,
)
from app.core.errors import problem_responses
from app.core.http import set_next_link
from app.core.openapi import NO_VALIDATION_ERROR
from app.core.pagination import Cursor, Limit, decode_cursor, encode_cursor
from app.core.schemas import has_control_characters, parse_object_id
from app.core.sessions import SessionDep
from app.models import PersonalAccessToken

public_router = domain_router(tags=["auth"], public=True)
router = domain_router(tags=["auth"])


@public_router.post(
    "/auth/register",
    operation_id="auth_register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses=problem_responses(409, 422),
)
async def register(data: RegisterRequest, request: Request, session: SessionDep) -> UserOut:
    """Create a client or therapist account; a link to verify its address goes to it."""
    user = await service.register(session, data)
    # What else a new account sets off (the verification link), listed in ``app.wiring``.
    for hook in request.app.state.after_registration:
        await hook(session, user)
    return UserOut.model_validate(user)


def _oauth_error(error: str, description: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=400,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache", **(headers or {})},
    )


class TokenRoute(PublicRoute):
    """A form the token endpoint cannot even read (too many fields, a broken multipart body)
    is ``invalid_request`` too, in RFC 6749's words like every other malformed request."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def oauth_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except HTTPException as exc:
                if exc.status_code != 400:
                    raise
                return _oauth_error("invalid_request", str(exc.detail))

        return oauth_errors


async def token(
    request: Request,
    session: SessionDep,
    grant_type: Annotated[str | None, Form(description="`password` or `refresh_token`")] = None,
    username: Annotated[str | None, Form(description="The account's e-mail")] = None,
    password: Annotated[str | None, Form(json_schema_extra={"format": "password"})] = None,
    scope: Annotated[str | None, Form(description="Space-separated subset of scopes")] = None,
    refresh_token: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
) -> Response:
    """OAuth 2.0 token endpoint (RFC 6749): the password and refresh_token grants."""
    address = request.client.host if request.client else "unknown"
    throttle_headers: dict[str, str] = {}
    fields = {
        "grant_type": grant_type,
        "username": username,
        "password": password,
        "scope": scope,
        "refresh_token": refresh_token,
        "client_id": client_id,
        "client_secret": client_secret,
    }
    try:
        if not _is_form(request):
            raise service.OAuthProblem(
                "invalid_request",
                "The token endpoint takes an application/x-www-form-urlencoded body "
                "(RFC 6749), not JSON.",
            )
        for name, value in fields.items():
            if value is not None and has_control_characters(value):
                raise service.OAuthProblem(
                    "invalid_request", f"{name} must not contain control characters."
                )
        if grant_type is None:
            raise service.OAuthProblem("invalid_request", "grant_type is required.")
        if grant_type == "password":
            if not username or password is None:
                raise service.OAuthProblem("invalid_request", "username and password are required.")
            tokens, throttle = await service.password_login(
                session,
                username=username,
                password=password,
                scope=scope,
                address=address,
                user_agent=_printable(request.headers.get("user-agent")),
            )
            throttle_headers = service.rate_headers(throttle)
        elif grant_type == "refresh_token":
            if not refresh_token:
                raise service.OAuthProblem("invalid_request", "refresh_token is required.")
            tokens = await service.refresh_login(session, refresh_token, scope)
        else:
            raise service.OAuthProblem("unsupported_grant_type", "Unsupported grant_type.")
    except service.OAuthProblem as problem:
        return _oauth_error(problem.error, problem.description, problem.headers or throttle_headers)
    body = TokenResponse(
        access_token=tokens.access_token,
        expires_in=tokens.expires_in,
        refresh_token=tokens.refresh_token,
        scope=tokens.scope,
    )
    return JSONResponse(
        body.model_dump(),
        headers={"Cache-Control": "no-store", "Pragma": "no-cache", **throttle_headers},
    )


public_router.add_api_route(
    "/auth/token",
    token,
    methods=["POST"],
    route_class_override=TokenRoute,
    operation_id="auth_token",
    response_model=TokenResponse,
    responses={
        400: {"model": OAuthError, "description": "RFC 6749 error"},
        **problem_responses(429),
    },
    # Every field is optional and a string: what is missing or wrong is an RFC 6749 error.
    openapi_extra={NO_VALIDATION_ERROR: True},
)


def _printable(value: str | None) -> str | None:
    """A header as the list of sessions shows it: control characters dropped."""
    if not value:
        return None
    return "".join(ch for ch in value if ch.isprintable()) or None


def _is_form(request: Request) -> bool:
    """A body that is not a form (JSON, most often) is named in the error instead of reading
    as a missing grant_type. No body at all is a form with no fields."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return media_type in ("", "application/x-www-form-urlencoded", "multipart/form-data")


@router.post(
    "/auth/logout",
    operation_id="auth_logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401),
)
async def logout(principal: CurrentPrincipal, session: SessionDep) -> Response:
    """End this login: its refresh tokens stop working."""
    await service.logout(session, principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", operation_id="me_get", response_model=UserOut, responses=problem_responses(401))
async def read_me(principal: CurrentPrincipal, session: SessionDep) -> UserOut:
    return UserOut.model_validate(await service.current_user(session, principal))


@router.patch(
    "/me", operation_id="me_update", response_model=UserOut, responses=problem_responses(401, 422)
)
async def update_me(
    data: UpdateMeRequest, principal: CurrentPrincipal, session: SessionDep
) -> UserOut:
    return UserOut.model_validate(await service.update_me(session, principal, data))


@router.post(
    "/me/tokens",
    operation_id="me_tokens_create",
    status_code=status.HTTP_201_CREATED,
    response_model=PersonalTokenCreated,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_personal_token(
    data: CreatePersonalTokenRequest, principal: CurrentPrincipal, session: SessionDep
) -> PersonalTokenCreated:
    """A token for scripts, never wider than the token creating it. Shown once."""
    row, token = await service.create_personal_token(session, principal, data)
    return PersonalTokenCreated(
        id=row.id, name=row.name, scopes=row.scope.split(), expires_at=row.expires_at, token=token
    )


@router.get(
    "/me/tokens",
    operation_id="me_tokens_list",
    response_model=PersonalTokenPage,
    responses=problem_responses(400, 401, 422),
)
async def list_personal_tokens(
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> PersonalTokenPage:
    query = service.personal_tokens_query(principal).order_by(PersonalAccessToken.id.desc())
    if cursor:
        (after,) = decode_cursor(cursor, uuid.UUID)
        query = query.where(PersonalAccessToken.id < after)
    rows = (await session.scalars(query.limit(limit + 1))).all()
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    set_next_link(request, response, next_cursor)
    items = [
        PersonalTokenOut(
            id=r.id,
            name=r.name,
            scopes=r.scope.split(),
            expires_at=r.expires_at,
            created_at=r.created_at,
            last_used_at=r.last_used_at,
        )
        for r in rows[:limit]
    ]
    return PersonalTokenPage(items=items, next_cursor=next_cursor)


@router.delete(
    "/me/tokens/{token_id}",
    operation_id="me_tokens_delete",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 404),
)
async def delete_personal_token(
    token_id: str, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    await service.revoke_personal_token(session, principal, parse_object_id(token_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
