"""Who is calling: bearer token -> ``Principal``, with scope checks declared for OpenAPI."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request, Security
from fastapi.security import OAuth2PasswordBearer, SecurityScopes

from app.auth.scopes import ROLE_SCOPES, SCOPE_DESCRIPTIONS, Role
from app.auth.sessions import session_is_live
from app.core.clock import utcnow
from app.core.errors import Forbidden, InsufficientScope, Unauthorized
from app.core.security import InvalidToken, decode_access_token, hash_opaque_token
from app.core.sessions import WRITE_METHODS
from app.models import PersonalAccessToken, User

PAT_PREFIX = "wpt_"
# Our access tokens are well under a kilobyte. A longer one is not ours, and is refused before
# it is decoded: uvicorn bounds no header's size, so the token's is the only bound on that work.
MAX_TOKEN_CHARS = 4096

oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="/v1/auth/token",
    scopes={str(k): v for k, v in SCOPE_DESCRIPTIONS.items()},
    auto_error=False,
)


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    role: Role
    scopes: frozenset[str]
    session_id: uuid.UUID | None = None  # the refresh-token family of a password login
    token_id: uuid.UUID | None = None  # the personal access token, when one is used

    @property
    def is_client(self) -> bool:
        return self.role is Role.CLIENT

    @property
    def is_therapist(self) -> bool:
        return self.role is Role.THERAPIST


async def authenticate(
    request: Request,
    security_scopes: SecurityScopes,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal:
    # Several dependencies of one request ask for the caller (with different scopes): the token
    # is checked once and the result kept for the rest of the request.
    cached = getattr(request.state, "principal", None)
    if cached is not None and cached[0] == token:
        _require_scopes(cached[1], security_scopes.scopes)
        return cached[1]
    if not token:
        raise Unauthorized("A bearer token is required.")
    if len(token) > MAX_TOKEN_CHARS:
        raise Unauthorized("The token is not valid.")
    if token.startswith(PAT_PREFIX):
        principal = await _principal_from_personal_token(request, token)
    else:
        try:
            claims = decode_access_token(token)
            role = Role(claims.role)
        except (InvalidToken, ValueError):
            raise Unauthorized("The token is not valid.") from None
        if role not in claims.scopes or claims.session_id is None:
            raise Unauthorized("The token is not valid.")
        live = await session_is_live(
            request.state.session,
            claims.session_id,
            claims.user_id,
            write=request.method in WRITE_METHODS,
        )
        if not live:
            raise Unauthorized("The session has ended: log in again.")
        principal = Principal(claims.user_id, role, claims.scopes, claims.session_id)
    request.state.principal = (token, principal)
    _require_scopes(principal, security_scopes.scopes)
    return principal


def _require_scopes(principal: Principal, needed: list[str]) -> None:
    for scope in needed:
        if scope in principal.scopes:
            continue
        if scope in ROLE_SCOPES:
            raise Forbidden(f"This operation is for {scope}s only.")
        raise InsufficientScope(f"The token lacks the '{scope}' scope.")


async def _principal_from_personal_token(request: Request, token: str) -> Principal:
    session = request.state.session
    row = (
        await session.execute(
            sa.select(PersonalAccessToken.id, PersonalAccessToken.scope, User.id, User.role)
            .join(User, User.id == PersonalAccessToken.user_id)
            .where(
                PersonalAccessToken.token_hash == hash_opaque_token(token),
                PersonalAccessToken.revoked_at.is_(None),
                sa.or_(
                    PersonalAccessToken.expires_at.is_(None),
                    PersonalAccessToken.expires_at > utcnow(),
                ),
            )
        )
    ).first()
    if row is None:
        raise Unauthorized("The token is not valid.")
    token_id, scope, user_id, role = row
    return Principal(user_id, Role(role), frozenset(scope.split()), None, token_id)


CurrentPrincipal = Annotated[Principal, Security(authenticate)]


def principal_with(*scopes: str) -> type[Principal]:
    """``Annotated`` alias for a principal that must hold every one of ``scopes``."""
    return Annotated[Principal, Security(authenticate, scopes=list(scopes))]  # type: ignore[return-value]
