"""The sync feed: everything a caller may see, then every change since, in commit order.

A first call (no cursor) walks the objects the caller may see now, type by type in id order
(the *snapshot*), having noted the feed's position ``M`` first; then it follows the change rows
after ``M``.

The feed's order is ``(tx, seq)``: the writing transaction's id, then the row's number
(``app.changes.service``). On PostgreSQL a follow reads only rows whose ``tx`` is below the
oldest transaction running at that instant (the *horizon*, ``pg_snapshot_xmin`` of the
statement's own snapshot): every transaction with a lower id has ended and its rows are in that
snapshot, so no row can appear behind a cursor later. ``M`` is ``(horizon, 0)``: every row of a
transaction at or above the horizon may be one the snapshot pages did not see, so all of them
follow (some twice: the last entry for an id wins). A long-running writing transaction
anywhere in the PostgreSQL cluster holds the horizon, and so every follower, back until it
ends (they wait; nothing is missed). The request's own transaction holds no id when it reads
(a GET writes its access log only before COMMIT), so it never holds itself back. SQLite
serializes writers: ``tx`` is 0 and ``seq`` alone is commit order, there is no horizon.

An entry's ``seq`` is its position in that order as one number: the transaction's id on
PostgreSQL (the entries of one transaction share it; the snapshot's entries carry the horizon),
the row's ``seq`` on SQLite (the snapshot's entries carry the last one); so entries never
decrease along the feed.

A change row only says that an object changed: the feed looks at the object when it serves
the row, and answers an upsert with its current document when the caller may see
it, or a deletion when not. So every way an object leaves the caller's sight (deleted, its goal
deleted, turned private, a link ended, an account erased) is a deletion, provided a row for it
reaches the caller's feed after the event; ``app.changes.service`` writes those rows (the
goal's visibility change, the link change, ...), in commit order.

Which rows reach whom (``Change``): a client reads their own rows (``audience_id`` null); a
therapist the ``shared`` rows of the clients linked to them when they read, plus the rows
addressed to them (links started or ended, encouragements they wrote). Both are keyset scans
on ``(client_id, tx, seq)`` / ``(audience_id, tx, seq)``: a page costs the same deep in the feed.

The documents are rendered by the database (``Resource.sql_document``: SQL generated from each
resource's declaration, the same JSON as its own GET) and the page is their text joined, with
statements built once per shape and run at the driver level (``fetch_page``): one per type on
the page, whatever its size. The statements, with SQLite's and PostgreSQL's forms side by
side, are in ``app.sync.repository``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import Principal
from app.auth.scopes import Scope
from app.core.errors import BadRequest
from app.core.pagination import BigInt, Nullable, decode_cursor, encode_cursor
from app.retention.service import refuse_expired_cursor
from app.sync import repository

# The object types in snapshot order, and the read scope each needs.
TYPE_SCOPES: tuple[tuple[str, str], ...] = (
    ("goal", Scope.GOALS_READ),
    ("step", Scope.GOALS_READ),
    ("review", Scope.REVIEWS_READ),
    ("encouragement", Scope.ENCOURAGEMENTS_READ),
)
SNAPSHOT, FOLLOW = "s", "f"


@dataclass(frozen=True)
class Position:
    phase: str  # SNAPSHOT or FOLLOW
    # FOLLOW: the (tx, seq) of the last row served; SNAPSHOT: the feed's position when it began
    tx: int
    seq: int
    type_index: int = 0  # SNAPSHOT: the type being walked
    after_id: uuid.UUID | None = None  # SNAPSHOT: the last id served of that type


def readable_types(principal: Principal) -> tuple[str, ...]:
    return tuple(kind for kind, scope in TYPE_SCOPES if scope in principal.scopes)


def _scope_mask(types: tuple[str, ...]) -> int:
    return sum(1 << i for i, (kind, _) in enumerate(TYPE_SCOPES) if kind in types)


def encode_position(principal: Principal, types: tuple[str, ...], at: Position) -> str:
    return encode_cursor(
        principal.user_id, _scope_mask(types), at.phase, at.tx, at.seq, at.type_index, at.after_id
    )


def decode_position(principal: Principal, types: tuple[str, ...], cursor: str) -> Position:
    """A cursor of this caller, made for the same object types (another account's cursor, or
    one made with other read scopes, would skip or mix objects): 400 otherwise."""
    user_id, mask, phase, tx, seq, type_index, after_id = decode_cursor(
        cursor, uuid.UUID, int, str, BigInt, BigInt, int, Nullable(uuid.UUID)
    )
    if (
        user_id != principal.user_id
        or mask != _scope_mask(types)
        or phase not in (SNAPSHOT, FOLLOW)
        or tx < 0
        or seq < 0
        or not 0 <= type_index <= len(types)
    ):
        raise BadRequest("The cursor is not valid for this feed.")
    return Position(phase, tx, seq, type_index, after_id)


async def feed_position(session: AsyncSession) -> Position:
    """Where a new follower starts: every row after it may be one its snapshot did not see."""
    return Position(SNAPSHOT, *await repository.feed_position(session))


def _upsert(kind: str, object_id: str, document: str, seq: int) -> str:
    return f'{{"type":"{kind}","op":"upsert","id":"{object_id}","data":{document},"seq":{seq}}}'


def _delete(kind: str, object_id: str, seq: int) -> str:
    return f'{{"type":"{kind}","op":"delete","id":"{object_id}","data":null,"seq":{seq}}}'


async def sync_page(
    session: AsyncSession, principal: Principal, cursor: str | None, limit: int
) -> bytes:
    """The page as JSON bytes (``SyncPage``): each entry's ``data`` is the document's JSON
    text as the database rendered it, joined without parsing."""
    types = readable_types(principal)
    if cursor is None:
        at = await feed_position(session)
    else:
        at = decode_position(principal, types, cursor)
    start = at
    changes: list[str] = []
    has_more = False
    if at.phase == SNAPSHOT:
        at, has_more = await _snapshot(session, principal, types, at, limit, changes)
    if at.phase == FOLLOW and not has_more and len(changes) < limit:
        at, has_more = await _follow(session, principal, types, at, limit - len(changes), changes)
    elif at.phase == FOLLOW and len(changes) >= limit:
        has_more = True
    if cursor is not None:  # after the reads: see refuse_expired_cursor
        await refuse_expired_cursor(session, start.tx, start.seq)
    # A follower with nothing new gets its own cursor back (it stands where it stood).
    next_cursor = cursor if cursor is not None and at == start else None
    return (
        b'{"changes":['
        + ",".join(changes).encode()
        + b'],"next_cursor":"'
        + (next_cursor or encode_position(principal, types, at)).encode()
        + (b'","has_more":true}' if has_more else b'","has_more":false}')
    )


_BEFORE_ANY_ID = uuid.UUID(int=0)


async def _snapshot(
    session: AsyncSession,
    principal: Principal,
    types: tuple[str, ...],
    at: Position,
    limit: int,
    out: list[str],
) -> tuple[Position, bool]:
    """Walk what the caller may see now, type by type in id order; then follow from ``M``."""
    type_index, after_id = at.type_index, at.after_id
    while type_index < len(types):
        kind = types[type_index]
        room = limit - len(out)
        if room == 0:
            return Position(SNAPSHOT, at.tx, at.seq, type_index, after_id), True
        params = {
            "caller": principal.user_id,
            "after": after_id or _BEFORE_ANY_ID,
            "limit": room + 1,
        }
        rows = await repository.snapshot_rows(session, kind, principal.is_client, params)
        number = repository.entry_number(session, at.tx, at.seq)
        out.extend([_upsert(kind, object_id, doc, number) for doc, object_id in rows[:room]])
        if len(rows) > room:
            last_id = uuid.UUID(rows[room - 1][1])
            return Position(SNAPSHOT, at.tx, at.seq, type_index, last_id), True
        type_index, after_id = type_index + 1, None
    return Position(FOLLOW, at.tx, at.seq), False


async def _follow(
    session: AsyncSession,
    principal: Principal,
    types: tuple[str, ...],
    at: Position,
    limit: int,
    out: list[str],
) -> tuple[Position, bool]:
    """The change rows after the cursor, each answered as the object stands now. An object
    changed twice in the page comes once, at its last row."""
    if not types:
        return at, False
    params = {"tx": at.tx, "seq": at.seq, "caller": principal.user_id, "limit": limit + 1}
    rows = list(await repository.follow_rows(session, principal.is_client, types, params))
    has_more = len(rows) > limit
    rows = rows[:limit]
    if not rows:
        return at, False
    last: dict[tuple[str, str], tuple[int, int]] = {}
    for tx, seq, kind, object_id in rows:
        last[(kind, str(object_id))] = (tx, seq)
    documents: dict[str, str] = {}
    for kind in types:
        ids = [uuid.UUID(object_id) for k, object_id in last if k == kind]
        if ids:
            found = await repository.visible_documents(
                session, kind, principal.is_client, ids, principal.user_id
            )
            documents.update({object_id: doc for doc, object_id in found})
    for (kind, object_id), (tx, seq) in sorted(last.items(), key=lambda item: item[1]):
        document = documents.get(object_id)
        number = repository.entry_number(session, tx, seq)
        out.append(
            _delete(kind, object_id, number)
            if document is None
            else _upsert(kind, object_id, document, number)
        )
    return Position(FOLLOW, rows[-1][0], rows[-1][1]), has_more
