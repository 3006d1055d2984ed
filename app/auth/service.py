"""Accounts, password logins with throttling, refresh-token families, personal tokens."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import anyio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import PAT_PREFIX, Principal
from app.auth.schemas import CreatePersonalTokenRequest, RegisterRequest, UpdateMeRequest
from app.auth.scopes import RESOURCE_SCOPES, ROLE_SCOPES, format_scopes, parse_scope
from app.auth.sessions import forget_sessions
from app.core import metrics
from app.core.clock import utcnow
from app.core.config import get_settings
from app.core.errors import Conflict, InsufficientScope, NotFound, RateLimited, Unauthorized
from app.core.security import (
    create_access_token,
    hash_opaque_token,
    hash_password,
    new_opaque_token,
    verify_password,
)
from app.core.sessions import new_session
from app.core.unit_of_work import keep_on_error
from app.models import (
    AuthSession,
    LoginFailure,
    PersonalAccessToken,
    RefreshToken,
    ReminderSchedule,
    User,
)

REFRESH_PREFIX = "wpr_"
EMAIL_KEY_MAX = 320  # the column widths of login_failures
ADDRESS_MAX = 64
USER_AGENT_MAX = 255


class OAuthProblem(Exception):
    """An RFC 6749 error: rendered as ``{"error", "error_description"}`` with status 400."""

    def __init__(self, error: str, description: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.headers = headers or {}


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    refresh_token: str
    scope: str


@dataclass(frozen=True)
class ThrottleState:
    limit: int
    remaining: int
    reset_seconds: int


# --- accounts -------------------------------------------------------------------------------


async def _email_taken(session: AsyncSession, email_key: str) -> bool:
    return await session.scalar(sa.select(User.id).where(User.email_key == email_key)) is not None


async def register(session: AsyncSession, data: RegisterRequest) -> User:
    email_key = data.email.lower()
    # Hash before the first statement, so the write transaction is not held open meanwhile.
    password_hash = await anyio.to_thread.run_sync(hash_password, data.password)
    if await _email_taken(session, email_key):
        raise Conflict("An account with this e-mail already exists.")
    user = User(
        email=data.email,
        email_key=email_key,
        display_name=data.display_name,
        role=data.role,
        timezone=data.timezone,
        password_hash=password_hash,
    )
    session.add(user)
    await session.flush()  # a concurrent registration of the e-mail: app.core.constraints
    return user


async def current_user(session: AsyncSession, principal: Principal) -> User:
    user = await session.get(User, principal.user_id)
    if user is None:  # the account was erased after the token was issued
        raise Unauthorized("The account no longer exists.")
    return user


async def update_me(session: AsyncSession, principal: Principal, data: UpdateMeRequest) -> User:
    user = await current_user(session, principal)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    for field, value in changes.items():
        setattr(user, field, value)
    if changes:
        user.updated_at = utcnow()
    await session.flush()
    if "timezone" in changes and principal.is_client:
        # The client's local reminder hours moved: their next reminder instant becomes now,
        # and the scheduler's next run sets it anew in the new timezone (docs/reminders.md).
        await session.execute(
            sa.update(ReminderSchedule)
            .where(ReminderSchedule.client_id == user.id)
            .values(next_at=utcnow())
        )
    return user


# --- password grant and throttling ----------------------------------------------------------


def _granted_scopes(role: str, requested: str | None) -> set[str]:
    asked = parse_scope(requested)
    unknown = asked - {str(s) for s in (*ROLE_SCOPES, *RESOURCE_SCOPES)}
    if unknown:
        raise OAuthProblem("invalid_scope", f"Unknown scope: {' '.join(sorted(unknown))}.")
    foreign_roles = (asked & {str(s) for s in ROLE_SCOPES}) - {role}
    if foreign_roles:
        raise OAuthProblem(
            "invalid_scope", f"This account cannot have scope '{foreign_roles.pop()}'."
        )
    if not asked:  # no scope asked for: everything the role allows
        return {role, *(str(s) for s in RESOURCE_SCOPES)}
    return {role, *asked}  # exactly what was asked ("client" alone: /v1/me and care links)


async def login_throttle(session: AsyncSession, email_key: str, address: str) -> ThrottleState:
    """How many failures are left for this account and address, and when the window resets."""
    settings = get_settings()
    now = utcnow()
    since = now - dt.timedelta(seconds=settings.login_window_seconds)
    states = []
    for column, value, limit in (
        (LoginFailure.email_key, email_key, settings.login_failures_per_account),
        (LoginFailure.address, address, settings.login_failures_per_address),
    ):
        times = (
            await session.scalars(
                sa.select(LoginFailure.at)
                .where(column == value, LoginFailure.at > since)
                .order_by(LoginFailure.at.desc())
                .limit(limit)
            )
        ).all()
        remaining = limit - len(times)
        # The window frees a slot when the oldest of the last `limit` failures ages out.
        reset = (
            int((times[-1] - since).total_seconds()) + 1
            if remaining <= 0
            else settings.login_window_seconds
        )
        states.append(ThrottleState(limit, max(remaining, 0), max(reset, 1)))
    return min(states, key=lambda s: (s.remaining, -s.reset_seconds))


async def password_login(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    scope: str | None,
    address: str,
    user_agent: str | None = None,
) -> tuple[IssuedTokens, ThrottleState]:
    email_key = username.strip().lower()[:EMAIL_KEY_MAX]
    # Read in a short transaction of its own: Argon2 is slow on purpose and must not run while
    # this request holds SQLite's write lock (every other writer would queue behind it).
    async with new_session(write=False) as reader:
        throttle = await login_throttle(reader, email_key, address)
        account = (
            await reader.execute(
                sa.select(User.id, User.role, User.password_hash).where(User.email_key == email_key)
            )
        ).first()
    if throttle.remaining <= 0:
        raise throttled(throttle)
    # An unknown e-mail is verified against a dummy hash: same cost, same answer.
    ok = await anyio.to_thread.run_sync(
        verify_password, password, account.password_hash if account else None
    )
    if account is None or not ok:
        metrics.LOGIN_FAILURES.inc()
        session.add(LoginFailure(email_key=email_key, address=address[:ADDRESS_MAX]))
        await session.flush()
        keep_on_error(session)  # the failure counts although this request answers 400
        left = ThrottleState(throttle.limit, max(throttle.remaining - 1, 0), throttle.reset_seconds)
        raise OAuthProblem(
            "invalid_grant", "The e-mail or password is not correct.", _rate_headers(left)
        )
    granted = _granted_scopes(account.role, scope)
    family_id = uuid.uuid4()
    session.add(
        AuthSession(
            id=family_id,
            user_id=account.id,
            user_agent=user_agent[:USER_AGENT_MAX] if user_agent else None,
            last_used_at=utcnow(),
        )
    )
    tokens = await _issue(session, account.id, account.role, granted, family_id)
    return tokens, throttle


def throttled(throttle: ThrottleState) -> RateLimited:
    """The 429 of a login refused while the failed-login throttle holds."""
    metrics.LOGIN_THROTTLED.inc()
    return RateLimited(
        "Too many failed logins. Try again later.",
        headers=_rate_headers(throttle) | {"Retry-After": str(throttle.reset_seconds)},
    )


async def count_failed_login(email_key: str, address: str) -> None:
    """A wrong password given outside the token endpoint (changing the password or the
    address) counts as a failed login, in a transaction of its own: the request itself
    answers an error and writes nothing."""
    metrics.LOGIN_FAILURES.inc()
    async with new_session(write=True) as writer:
        writer.add(LoginFailure(email_key=email_key[:EMAIL_KEY_MAX], address=address[:ADDRESS_MAX]))
        await writer.commit()


def _rate_headers(state: ThrottleState) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(state.limit),
        "RateLimit-Remaining": str(state.remaining),
        "RateLimit-Reset": str(state.reset_seconds),
    }


rate_headers = _rate_headers


# --- refresh-token families -----------------------------------------------------------------


async def _issue(
    session: AsyncSession, user_id: uuid.UUID, role: str, scopes: set[str], family_id: uuid.UUID
) -> IssuedTokens:
    settings = get_settings()
    now = utcnow()
    refresh = new_opaque_token(REFRESH_PREFIX)
    scope_list = format_scopes(scopes)
    session.add(
        RefreshToken(
            family_id=family_id,
            user_id=user_id,
            token_hash=hash_opaque_token(refresh),
            scope=" ".join(scope_list),
            created_at=now,
            expires_at=now + dt.timedelta(days=settings.refresh_token_days),
        )
    )
    await session.flush()
    access, lifetime = create_access_token(
        user_id=user_id, role=role, scopes=scope_list, session_id=family_id, now=now
    )
    return IssuedTokens(access, lifetime, refresh, " ".join(scope_list))


async def refresh_login(
    session: AsyncSession, refresh_token: str, scope: str | None
) -> IssuedTokens:
    now = utcnow()
    token_hash = hash_opaque_token(refresh_token)
    # Marking the token used is the atomic step: of two concurrent refreshes, one wins.
    claimed = (
        await session.execute(
            sa.update(RefreshToken)
            .where(
                RefreshToken.token_hash == token_hash,
                RefreshToken.used_at.is_(None),
                RefreshToken.revoked_at.is_(None),
                RefreshToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(RefreshToken.family_id, RefreshToken.user_id, RefreshToken.scope)
        )
    ).first()
    if claimed is None:
        known = (
            await session.execute(
                sa.select(RefreshToken.family_id, RefreshToken.used_at).where(
                    RefreshToken.token_hash == token_hash
                )
            )
        ).first()
        if known is not None and known.used_at is not None:
            # Reuse of a rotated token: someone holds a copy. End the whole family.
            await revoke_family(session, known.family_id)
            keep_on_error(session)  # the family stays revoked although this answers 400
        raise OAuthProblem("invalid_grant", "The refresh token is not valid.")
    family_id, user_id, granted = claimed
    await session.execute(
        sa.update(AuthSession).where(AuthSession.id == family_id).values(last_used_at=now)
    )
    role = await session.scalar(sa.select(User.role).where(User.id == user_id))
    if role is None:
        raise OAuthProblem("invalid_grant", "The refresh token is not valid.")
    scopes = set(granted.split())
    if scope:
        narrower = parse_scope(scope) | {role}
        if not narrower <= scopes:
            raise OAuthProblem("invalid_scope", "A refresh cannot widen the granted scope.")
        scopes = narrower
    return await _issue(session, user_id, role, scopes, family_id)


async def revoke_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    """End one login: its refresh tokens and, at once, its access tokens."""
    now = utcnow()
    await session.execute(
        sa.update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await session.execute(
        sa.update(AuthSession)
        .where(AuthSession.id == family_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    forget_sessions([family_id])


async def revoke_all_sessions(session: AsyncSession, user_id: uuid.UUID) -> None:
    """End every login and personal token of an account (erasure, a stolen password): every
    token it holds answers 401 from the commit on."""
    now = utcnow()
    for model in (RefreshToken, AuthSession, PersonalAccessToken):
        await session.execute(
            sa.update(model)
            .where(model.user_id == user_id, model.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    forget_sessions()


async def logout(session: AsyncSession, principal: Principal) -> None:
    if principal.session_id is not None:
        await revoke_family(session, principal.session_id)


# --- personal access tokens -----------------------------------------------------------------


async def create_personal_token(
    session: AsyncSession, principal: Principal, data: CreatePersonalTokenRequest
) -> tuple[PersonalAccessToken, str]:
    asked = {str(s) for s in data.scopes}
    foreign_roles = (asked & {str(s) for s in ROLE_SCOPES}) - {str(principal.role)}
    wider = (asked - principal.scopes) | foreign_roles
    if wider:
        raise InsufficientScope(
            f"A token cannot be wider than the one creating it: {' '.join(sorted(wider))}."
        )
    token = new_opaque_token(PAT_PREFIX)
    now = utcnow()
    row = PersonalAccessToken(
        user_id=principal.user_id,
        name=data.name,
        scope=" ".join(format_scopes(asked | {str(principal.role)})),
        token_hash=hash_opaque_token(token),
        created_at=now,
        expires_at=now + dt.timedelta(days=data.expires_in_days) if data.expires_in_days else None,
    )
    session.add(row)
    await session.flush()
    return row, token


def personal_tokens_query(principal: Principal) -> sa.Select:
    return sa.select(PersonalAccessToken).where(
        PersonalAccessToken.user_id == principal.user_id, PersonalAccessToken.revoked_at.is_(None)
    )


async def revoke_personal_token(
    session: AsyncSession, principal: Principal, token_id: uuid.UUID
) -> None:
    result = await session.execute(
        sa.update(PersonalAccessToken)
        .where(
            PersonalAccessToken.id == token_id,
            PersonalAccessToken.user_id == principal.user_id,
            PersonalAccessToken.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    if result.rowcount == 0:
        raise NotFound("No such token.")
