"""The scheduler: one run as of an instant, and the background worker that runs it every
minute.

A run costs what is due, not what exists: it reads only the schedule rows whose instant has
come (an index on ``next_at``), in batches. Each batch is first leased in a short transaction
of its own (the rows' instant moves a few minutes ahead; on PostgreSQL taken ``FOR UPDATE SKIP
LOCKED``, so several workers, servers and ``waypoint reminders run`` share the work), then
handled in a second one: reminders, lagging judgements, notifications, webhook events and the
clients' next instants commit together. A run that dies between the two leaves its clients to
the next run once the lease is over. Reminding a goal marks it with the due date it was
reminded for, and the mark is written by a conditional UPDATE, so each due date is reminded
once whatever runs side by side.

The run keeps no clock of its own: as of ``at`` it does what is due at ``at`` and not yet done.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.background import BackgroundWorker
from app.core.clock import utcnow
from app.core.sessions import new_session
from app.core.unit_of_work import BeforeCommit, CommitContext, run_before_commit_hooks
from app.reminders import repository
from app.reminders.alerts import alert_lagging, remind
from app.reminders.lagging import judge
from app.reminders.metrics import count_run
from app.reminders.recipients import recipients
from app.reminders.schedule import Clock, GoalDates, last_reminder_date, next_instant
from app.reminders.service import goal_changed

log = structlog.get_logger("waypoint.reminders")

BATCH = 200
LEASE = dt.timedelta(minutes=5)
EVERY_SECONDS = 60.0


@dataclass
class RunResult:
    review_due: int = 0
    goal_lagging: int = 0
    clients: int = 0

    def summary(self) -> str:
        return f"reminders: {self.review_due} review_due, {self.goal_lagging} goal_lagging"


async def run_once(
    at: dt.datetime, hooks: Sequence[BeforeCommit], *, batch: int = BATCH
) -> RunResult:
    """Everything due by ``at``, batch after batch. ``hooks``: what every unit of work writes
    before COMMIT (``app.wiring.BEFORE_COMMIT``): the sync feed's rows and the webhook events
    of what the run changed."""
    total = RunResult()
    lease_until = at + LEASE
    while True:
        async with new_session(write=True) as session:
            clients = await repository.lease_due(session, at, lease_until, batch)
            await session.commit()
        if not clients:
            break
        before = (total.review_due, total.goal_lagging)
        async with new_session(write=True) as session:
            await _handle(session, clients, at, lease_until, total)
            await run_before_commit_hooks(CommitContext(session, "SCRIPT", 200), hooks)
            await session.commit()
        count_run(total.review_due - before[0], total.goal_lagging - before[1])
        total.clients += len(clients)
        if len(clients) < batch:
            break
    if total.review_due or total.goal_lagging:
        log.info(
            "reminders_run", clients=total.clients, review_due=total.review_due,
            goal_lagging=total.goal_lagging,
        )  # fmt: skip
    return total


async def _handle(
    session: AsyncSession,
    clients: list[uuid.UUID],
    at: dt.datetime,
    lease_until: dt.datetime,
    total: RunResult,
) -> None:
    people = await recipients(session, clients)
    clocks: dict[uuid.UUID, Clock] = {}
    for client_id in clients:
        person = people.get(client_id)
        if person is None:
            continue  # erased meanwhile: its schedule row went with it
        clock = Clock(person.timezone, person.reminder_hour, person.review_reminders)
        clocks[client_id] = clock
        through = last_reminder_date(at, clock)
        if clock.review_reminders:
            reminded = await repository.mark_reminded(session, client_id, through)
            if reminded:
                total.review_due += await remind(session, person, reminded, at)
        for goal in await repository.maybe_missed(session, client_id, through):
            verdict = judge(through, goal.next_review_due, goal.review_every_days, [])
            if not verdict.missed_cycle:
                continue
            started = await repository.mark_missed(
                session, goal.id, goal.next_review_due, was_lagging=goal.lagging, at=at
            )
            if started:
                shared = goal.visibility == "shared"
                goal_changed(session, client_id, goal.id, shared)
                total.goal_lagging += await alert_lagging(
                    session, client_id=client_id, goal_id=goal.id, shared=shared, at=at
                )
    dates: dict[uuid.UUID, list[GoalDates]] = {client_id: [] for client_id in clients}
    for row in await repository.goal_dates(session, list(clocks)):
        dates[row.client_id].append(
            GoalDates(row.next_review_due, row.review_every_days, row.reminded_due,
                      row.lagging_missed)
        )  # fmt: skip
    for client_id in clients:
        clock = clocks.get(client_id)
        upcoming = next_instant(dates[client_id], clock) if clock else None
        if upcoming is not None and upcoming <= at:
            # Only a goal changed under this run can still be due: the next run takes it.
            upcoming = lease_until
        await repository.finish_schedule(session, client_id, lease_until, upcoming)


def reminder_worker(hooks: Sequence[BeforeCommit]) -> BackgroundWorker:
    """The background worker (``app.wiring`` lists it with the hooks it hands over): a run as
    of now every minute, until ``stop``."""

    async def run_reminders(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await run_once(utcnow(), hooks)
            except Exception as exc:  # the next minute tries again
                log.warning("reminders_run_failed", error_type=type(exc).__name__)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=EVERY_SECONDS)

    return run_reminders
