"""Care invites and links: a therapist invites, a client redeems, either party ends the link.

Access to a client's goals follows the *active* links (see ``app.goals.access``), so ending a
link cuts the therapist off at the next request, whatever tokens they hold.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.accesslog.service import record_access
from app.account.service import require_verified_therapist
from app.auth.dependencies import Principal
from app.carelinks.schemas import CareLinkOut, InviteOut, Party
from app.changes.service import record_link_change
from app.core.clock import utcnow
from app.core.errors import Conflict, NotFound
from app.core.pagination import decode_cursor, encode_cursor
from app.models import CareInvite, CareLink, User, new_id
from app.reminders import service as reminders

INVITE_TTL = dt.timedelta(days=7)
CODE_BYTES = 10  # 80 random bits: unguessable, yet short enough to read out over the phone


def normalize_code(code: str) -> str:
    """Codes are shown grouped (``ABCD-EFGH-...``); case, dashes and spaces do not matter."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


def hash_code(code: str) -> str:
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


def new_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode()  # 16 characters
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


async def create_invite(session: AsyncSession, principal: Principal) -> InviteOut:
    await require_verified_therapist(session, principal)
    code = new_code()
    now = utcnow()
    expires_at = now + INVITE_TTL
    await session.execute(
        sa.insert(CareInvite).values(
            id=new_id(),
            therapist_id=principal.user_id,
            code_hash=hash_code(code),
            created_at=now,
            expires_at=expires_at,
        )
    )
    return InviteOut(code=code, expires_at=expires_at)


async def redeem_invite(session: AsyncSession, principal: Principal, code: str) -> CareLinkOut:
    """Use the code once (a conditional UPDATE, so two redeemers cannot both win)."""
    now = utcnow()
    therapist_id = (
        await session.execute(
            sa.update(CareInvite)
            .where(
                CareInvite.code_hash == hash_code(code),
                CareInvite.used_at.is_(None),
                CareInvite.expires_at > now,
            )
            .values(used_at=now)
            .returning(CareInvite.therapist_id)
        )
    ).scalar_one_or_none()
    if therapist_id is None:
        raise NotFound("No such invite code (unknown, used or expired).")
    already = await session.scalar(
        sa.select(CareLink.id).where(
            CareLink.therapist_id == therapist_id,
            CareLink.client_id == principal.user_id,
            CareLink.ended_at.is_(None),
        )
    )
    if already is not None:
        raise Conflict("You are already linked with this therapist.")
    link_id = new_id()
    # A concurrent acceptance of another invite of the same therapist, or an erased account,
    # makes the database refuse the link: answered by app.core.constraints.
    await session.execute(
        sa.insert(CareLink).values(
            id=link_id, therapist_id=therapist_id, client_id=principal.user_id, created_at=now
        )
    )
    record_link_change(session, therapist_id, principal.user_id)
    return (await _links(session, sa.and_(CareLink.id == link_id), 1))[0]


_Therapist = aliased(User)
_Client = aliased(User)


async def _links(
    session: AsyncSession, where: sa.ColumnElement[bool], limit: int
) -> list[CareLinkOut]:
    rows = await session.execute(
        sa.select(
            CareLink.id,
            CareLink.created_at,
            _Therapist.id,
            _Therapist.display_name,
            _Client.id,
            _Client.display_name,
        )
        .join(_Therapist, _Therapist.id == CareLink.therapist_id)
        .join(_Client, _Client.id == CareLink.client_id)
        .where(where)
        .order_by(CareLink.id.desc())
        .limit(limit)
    )
    return [
        CareLinkOut(
            id=link_id,
            therapist=Party(id=t_id, display_name=t_name),
            client=Party(id=c_id, display_name=c_name),
            created_at=created_at,
        )
        for link_id, created_at, t_id, t_name, c_id, c_name in rows
    ]


def _mine(principal: Principal) -> sa.ColumnElement[bool]:
    party = CareLink.client_id if principal.is_client else CareLink.therapist_id
    return sa.and_(party == principal.user_id, CareLink.ended_at.is_(None))


async def list_links(
    session: AsyncSession, principal: Principal, limit: int, cursor: str | None
) -> tuple[list[CareLinkOut], str | None]:
    """The caller's active links, newest first (ids are time-ordered)."""
    where = _mine(principal)
    if cursor:
        (after,) = decode_cursor(cursor, uuid.UUID)
        where = sa.and_(where, CareLink.id < after)
    links = await _links(session, where, limit + 1)
    next_cursor = encode_cursor(links[limit - 1].id) if len(links) > limit else None
    return links[:limit], next_cursor


async def end_link(session: AsyncSession, principal: Principal, link_id: uuid.UUID) -> None:
    ended = (
        await session.execute(
            sa.update(CareLink)
            .where(CareLink.id == link_id, _mine(principal))
            .values(ended_at=utcnow())
            .returning(CareLink.client_id, CareLink.therapist_id)
        )
    ).one_or_none()
    if ended is None:
        raise NotFound("No such care link.")
    ended, therapist_id = ended
    record_link_change(session, therapist_id, ended)
    await reminders.link_ended(session, ended, therapist_id)
    record_access(
        session,
        principal,
        client_id=ended,
        action="delete",
        object_type="care_link",
        object_ids=[link_id],
    )
