"""The account flows: password reset and change, verified addresses, change of address, and
the account's sessions. Links go out through the mail outbox, in the request's transaction.

Tokens are 256 random bits, URL-safe, and kept only as SHA-256 hashes (``account_tokens``);
each is single-use, and a newer link of the same kind makes the older ones invalid. A token
that opens nothing on a route (used, expired, superseded, unknown, of another kind, not even
a token) answers 400 ``invalid-token``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import secrets
import uuid
from dataclasses import dataclass
from enum import StrEnum

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from app.account import repository
from app.account.wakeup import RESET_WAKEUP
from app.auth.dependencies import Principal
from app.auth.service import count_failed_login, login_throttle, revoke_family, throttled
from app.auth.sessions import forget_sessions
from app.core.clock import utcnow
from app.core.config import get_settings
from app.core.errors import (
    Conflict,
    EmailNotVerified,
    Forbidden,
    InvalidAccountToken,
    NotFound,
    RateLimited,
    Unauthorized,
)
from app.core.security import hash_opaque_token, hash_password, verify_password
from app.core.sessions import new_session
from app.core.unit_of_work import after_failure
from app.mail.outbox import queue_mail
from app.models import User

WINDOW = dt.timedelta(hours=1)
RESETS_PER_EMAIL = 5
RESETS_PER_NETWORK = 100
VERIFICATIONS_PER_ACCOUNT = 5
KEY_MAX = 320
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{32,128}")
NETWORK_MAX = 64


class Link(StrEnum):
    """A kind of link: its page on the frontend and how long it works."""

    PASSWORD_RESET = "reset-password"
    VERIFY_EMAIL = "verify-email"
    CONFIRM_EMAIL = "confirm-email"


LIFETIMES = {
    Link.PASSWORD_RESET: dt.timedelta(hours=1),
    Link.VERIFY_EMAIL: dt.timedelta(days=7),
    Link.CONFIRM_EMAIL: dt.timedelta(hours=24),
}


@dataclass(frozen=True, slots=True)
class Throttle:
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }


async def _count_request(
    session: AsyncSession, checks: list[tuple[str, str, int]], now: dt.datetime
) -> Throttle:
    """Refuse (429 + ``Retry-After``) when any ``(kind, key, limit)`` already had ``limit``
    requests within the hour; otherwise count this one for each. The tightest state after."""
    states = []
    for kind, key, limit in checks:
        times = await repository.recent_requests(session, kind, key, now - WINDOW, limit)
        # The window frees a slot when the oldest of the last ``limit`` requests ages out.
        reset = math.ceil((times[-1] + WINDOW - now).total_seconds()) if times else 3600
        if len(times) >= limit:
            state = Throttle(limit, 0, max(reset, 1))
            raise RateLimited(
                "Too many requests of this kind. Try again later.",
                headers=state.headers() | {"Retry-After": str(state.reset_seconds)},
            )
        states.append(Throttle(limit, limit - len(times) - 1, max(reset, 1)))
    await repository.record_requests(
        session, [{"kind": kind, "key": key, "at": now} for kind, key, _ in checks]
    )
    return min(states, key=lambda s: (s.remaining, -s.reset_seconds))


def _new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, hash_opaque_token(token)


def _link(kind: Link, token: str) -> str:
    return f"{get_settings().mail_links_base}/{kind.value}?token={token}"


async def _send_link(
    session: AsyncSession,
    *,
    kind: Link,
    template: str,
    user_id: uuid.UUID,
    to: str,
    display_name: str,
    now: dt.datetime,
) -> None:
    token, token_hash = _new_token()
    await repository.store_token(
        session,
        user_id=user_id,
        kind=kind.value,
        token_hash=token_hash,
        email=to,
        now=now,
        expires_at=now + LIFETIMES[kind],
    )
    context = {
        "display_name": display_name,
        "link": _link(kind, token),
        "valid_days": LIFETIMES[kind].days,
    }
    await queue_mail(session, to=to, template=template, context=context, user_id=user_id)


async def _use(session: AsyncSession, kind: Link, token: str, now: dt.datetime) -> tuple:
    if TOKEN_SHAPE.fullmatch(token) is None:  # not even a token (and nothing to hash)
        raise InvalidAccountToken("This link is not valid (used, expired or replaced).")
    row = await repository.use_token(
        session, kind=kind.value, token_hash=hash_opaque_token(token), now=now
    )
    if row is None:
        raise InvalidAccountToken("This link is not valid (used, expired or replaced).")
    return row


async def _account(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None:  # erased after the token was issued
        raise Unauthorized("The account no longer exists.")
    return user


# --- password reset -------------------------------------------------------------------------


async def request_password_reset(session: AsyncSession, email: str, network: str) -> Throttle:
    """Count the request and note it for the reset worker (``app.account.resets``), which
    sends a link when an account has ``email``. The request does the same work whatever the
    address (two counts and one row), so neither its answer nor its time tells whether the
    account exists."""
    now = utcnow()
    email_key = email.lower()[:KEY_MAX]
    state = await _count_request(
        session,
        [
            ("password_reset_email", email_key, RESETS_PER_EMAIL),
            ("password_reset_network", network[:NETWORK_MAX], RESETS_PER_NETWORK),
        ],
        now,
    )
    await repository.add_reset_request(session, email_key, now)
    RESET_WAKEUP.note(session)
    return state


async def send_reset_link(session: AsyncSession, email_key: str) -> bool:
    """The reset worker's step for one request: a link to the account that has this address,
    if one does. Whether one did."""
    account = await repository.user_by_email_key(session, email_key)
    if account is None:
        return False
    await _send_link(
        session,
        kind=Link.PASSWORD_RESET,
        template="password_reset",
        user_id=account.id,
        to=account.email,
        display_name=account.display_name,
        now=utcnow(),
    )
    return True


async def confirm_password_reset(session: AsyncSession, token: str, new_password: str) -> None:
    """The new password works at once; every password-login session of the account ends
    (personal access tokens go on)."""
    # Hashed before the first statement: the write transaction is not held open meanwhile.
    password_hash = await anyio.to_thread.run_sync(hash_password, new_password)
    now = utcnow()
    user_id, _ = await _use(session, Link.PASSWORD_RESET, token, now)
    user = await _account(session, user_id)
    user.password_hash = password_hash
    user.updated_at = now
    await session.flush()
    await repository.end_login_sessions(session, user_id, now, keep=None)
    forget_sessions()


# --- password change and change of address (the current password first) --------------------


async def _check_password(
    session: AsyncSession, principal: Principal, password: str, network: str
) -> User:
    """The caller's account, once ``password`` is its current one. A wrong one is a failed
    login (it counts toward the login throttle) and answers 403; while the throttle holds,
    429 (even for the right password)."""
    async with new_session(write=False) as reader:
        user = await reader.get(User, principal.user_id)
        if user is None:
            raise Unauthorized("The account no longer exists.")
        throttle = await login_throttle(reader, user.email_key, network)
    if throttle.remaining <= 0:
        raise throttled(throttle)
    ok = await anyio.to_thread.run_sync(verify_password, password, user.password_hash)
    if not ok:
        # Counted once the request's transaction is over: it may hold the only writer's turn
        # (an Idempotency-Key's row), which a second transaction here would wait for forever.
        email_key = user.email_key
        after_failure(session, lambda: count_failed_login(email_key, network))
        raise Forbidden("The current password is not correct.")
    return user


async def change_password(
    session: AsyncSession, principal: Principal, current: str, new: str, network: str
) -> None:
    """Every other session of the account ends; the caller's goes on. A notice goes to the
    account's address."""
    await _check_password(session, principal, current, network)
    password_hash = await anyio.to_thread.run_sync(hash_password, new)
    now = utcnow()
    user = await _account(session, principal.user_id)
    user.password_hash = password_hash
    user.updated_at = now
    await session.flush()
    await repository.end_login_sessions(session, user.id, now, keep=principal.session_id)
    forget_sessions()
    await queue_mail(
        session,
        to=user.email,
        template="password_changed",
        context={"display_name": user.display_name},
        user_id=user.id,
    )


async def change_email(
    session: AsyncSession, principal: Principal, new_email: str, password: str, network: str
) -> None:
    """A confirmation link to the new address, a notice to the current one; nothing changes
    until the link is followed."""
    await _check_password(session, principal, password, network)
    now = utcnow()
    if await repository.email_key_taken(session, new_email.lower()):
        raise Conflict("An account with this e-mail already exists.")
    user = await _account(session, principal.user_id)
    await _send_link(
        session,
        kind=Link.CONFIRM_EMAIL,
        template="confirm_email",
        user_id=user.id,
        to=new_email,
        display_name=user.display_name,
        now=now,
    )
    await queue_mail(
        session,
        to=user.email,
        template="email_change_notice",
        context={"display_name": user.display_name},
        user_id=user.id,
    )


async def confirm_email(session: AsyncSession, token: str) -> None:
    now = utcnow()
    user_id, new_email = await _use(session, Link.CONFIRM_EMAIL, token, now)
    user = await _account(session, user_id)
    email_key = new_email.lower()
    if email_key != user.email_key and await repository.email_key_taken(session, email_key):
        raise Conflict("Another account took this e-mail address meanwhile.")
    user.email, user.email_key, user.email_verified, user.updated_at = (
        new_email,
        email_key,
        True,
        now,
    )
    await session.flush()  # a concurrent registration of the address: app.core.constraints


# --- verified addresses ---------------------------------------------------------------------


async def send_verification(session: AsyncSession, user: User) -> None:
    """The link that verifies ``user``'s address (at registration; not counted)."""
    await _send_link(
        session,
        kind=Link.VERIFY_EMAIL,
        template="verify_email",
        user_id=user.id,
        to=user.email,
        display_name=user.display_name,
        now=utcnow(),
    )


async def resend_verification(session: AsyncSession, principal: Principal) -> Throttle:
    user = await _account(session, principal.user_id)
    if user.email_verified:
        raise Conflict("The e-mail address is already verified.")
    now = utcnow()
    state = await _count_request(
        session, [("verify_email", str(user.id), VERIFICATIONS_PER_ACCOUNT)], now
    )
    await send_verification(session, user)
    return state


async def verify_email(session: AsyncSession, token: str) -> None:
    now = utcnow()
    user_id, email = await _use(session, Link.VERIFY_EMAIL, token, now)
    user = await _account(session, user_id)
    if email.lower() != user.email_key:  # the address changed since the link was sent
        raise InvalidAccountToken("This link was for an address the account no longer has.")
    user.email_verified = True
    user.updated_at = now
    await session.flush()


async def require_verified_therapist(session: AsyncSession, principal: Principal) -> None:
    """``WAYPOINT_REQUIRE_VERIFIED_THERAPISTS``: a therapist must have verified their address
    before inviting clients."""
    if not (get_settings().require_verified_therapists and principal.is_therapist):
        return
    user = await _account(session, principal.user_id)
    if not user.email_verified:
        raise EmailNotVerified("Verify your e-mail address before inviting clients.")


# --- sessions -------------------------------------------------------------------------------


async def list_sessions(session: AsyncSession, principal: Principal) -> list[dict[str, object]]:
    rows = await repository.live_sessions(session, principal.user_id, utcnow())
    return [
        {
            "id": row.id,
            "created_at": row.created_at,
            "last_used_at": row.last_used_at,
            "user_agent": row.user_agent,
            "current": row.id == principal.session_id,
        }
        for row in rows
    ]


async def end_session(session: AsyncSession, principal: Principal, session_id: uuid.UUID) -> None:
    """End one of the caller's sessions (its tokens stop at once); another account's: 404."""
    if await repository.session_owner(session, session_id) != principal.user_id:
        raise NotFound("No such session.")
    await revoke_family(session, session_id)
