"""The therapist's dashboard: one line per linked client, in two queries whatever the page size.

Only shared goals count; private goals count nowhere here.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.accesslog.service import record_access
from app.auth.dependencies import Principal
from app.core.clock import local_date
from app.core.pagination import decode_cursor, encode_cursor
from app.dashboard.gas import t_score_from_sums
from app.dashboard.schemas import ClientRef, ClientSummary
from app.goals.access import linked_clients, readable_goals
from app.goals.documents import percent_done
from app.models import Goal, User
from app.reviews import due


def _when(condition: sa.ColumnElement[bool], value: sa.ColumnElement | int) -> sa.ColumnElement:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, value), else_=0)), 0)


def _overdue(clients: list[sa.Row], at: dt.datetime) -> sa.ColumnElement[bool]:
    """``next_review_due`` before each client's own today (clients grouped by that date)."""
    by_day: dict[dt.date, list[uuid.UUID]] = defaultdict(list)
    for row in clients:
        by_day[local_date(at, row.timezone)].append(row.id)
    return sa.or_(
        *(
            sa.and_(Goal.client_id.in_(ids), Goal.next_review_due < day)
            for day, ids in by_day.items()
        )
    )


async def client_summaries(
    session: AsyncSession, principal: Principal, *, limit: int, cursor: str | None
) -> tuple[list[ClientSummary], str | None]:
    """Linked clients ordered by ``(display_name, id)``, keyset-paginated."""
    query = sa.select(User.id, User.display_name, User.timezone).where(
        User.id.in_(linked_clients(principal.user_id))
    )
    if cursor:
        name, cid = decode_cursor(cursor, str, uuid.UUID)
        query = query.where(sa.tuple_(User.display_name, User.id) > (name, cid))
    query = query.order_by(User.display_name, User.id).limit(limit + 1)
    clients = list((await session.execute(query)).all())
    next_cursor = None
    if len(clients) > limit:
        clients = clients[:limit]
        next_cursor = encode_cursor(clients[-1].display_name, clients[-1].id)
    if not clients:
        return [], None

    active = Goal.status == "active"
    scored = sa.and_(active, Goal.latest_gas_score.is_not(None))
    stats_query = (
        sa.select(
            Goal.client_id,
            _when(active, 1).label("active_goals"),
            _when(active, Goal.steps_total).label("steps_total"),
            _when(active, Goal.steps_done).label("steps_done"),
            sa.func.max(Goal.last_review_at).label("last_review_at"),
            _when(sa.and_(active, _overdue(clients, due.now())), 1).label("overdue"),
            _when(sa.and_(active, Goal.lagging), 1).label("lagging"),
            _when(scored, Goal.gas_weight * Goal.latest_gas_score).label("swx"),
            _when(scored, Goal.gas_weight * Goal.gas_weight).label("sww"),
            _when(scored, Goal.gas_weight).label("sw"),
        )
        .where(Goal.client_id.in_([c.id for c in clients]), readable_goals(principal))
        .group_by(Goal.client_id)
    )
    stats = {row.client_id: row for row in (await session.execute(stats_query)).all()}

    items = []
    for client in clients:
        row = stats.get(client.id)
        steps_total = int(row.steps_total) if row else 0
        items.append(
            ClientSummary(
                client=ClientRef(id=client.id, display_name=client.display_name),
                active_goals=int(row.active_goals) if row else 0,
                steps_done_percent=(
                    percent_done(int(row.steps_done), steps_total) if row and steps_total else None
                ),
                last_review_at=row.last_review_at if row else None,
                reviews_overdue=int(row.overdue) if row else 0,
                goals_lagging=int(row.lagging) if row else 0,
                gas_t_score=t_score_from_sums(row.swx, row.sww, row.sw) if row else None,
            )
        )
        record_access(
            session,
            principal,
            client_id=client.id,
            action="read",
            object_type="client",
            object_ids=[client.id],
        )
    return items, next_cursor
