"""Reminders in the benchmark: the scheduler's sweep and review creation with the lagging
check, measured in process (CPU time: what a busy neighbour on a shared machine disturbs
least), on data loaded by ``bench.run`` (100,000 goals over 1,000 clients).

- **Sweep.** The regular clients' goals are given due dates so that 1 % of the clients, then
  10 %, are due at one instant, and every client has a schedule row; one scheduler run as of
  that instant reminds the due ones. Its CPU per reminder (this process, and on PostgreSQL the
  database backends') must not grow with the share due: within 20 % between the two.
- **Reviews.** Reviews added through the API, once as the code is and once with the reminder
  work of a review taken out (the review path as it was before reminders: the client's
  timezone read, no lagging judgement, no schedule write), in turns: the rate with it at least
  0.9 of the rate without.

    .venv/bin/python -m bench.reminders sqlite:///var/bench/waypoint.db
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import statistics
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

SHARES = (0.01, 0.10)
REPEAT = 10  # runs of the 1 % share per round
DUE_AT = dt.datetime(2027, 6, 1, 7, tzinfo=dt.UTC)  # 09:00 in Berlin, the bench's timezone
FAR = dt.date(2027, 9, 1)


@dataclass
class ReminderFigures:
    sweep_ms: dict[float, float]  # CPU ms per reminder, median of the rounds, by share due
    reminded: dict[float, int]
    review_ratio: float  # review CPU per review without the reminder work / with it
    review_ms: tuple[float, float]  # CPU ms per review: with, without

    @property
    def sweep_ratio(self) -> float:
        return self.sweep_ms[SHARES[1]] / self.sweep_ms[SHARES[0]]


def _engine(url: str) -> sa.Engine:
    from app.core.database_url import sync_url

    return sa.create_engine(sync_url(url), poolclass=sa.pool.NullPool)


def _backends_cpu(url: str) -> float:
    if not url.startswith("postgresql"):
        return 0.0
    from bench.server import cpu_seconds

    engine = _engine(url)
    with engine.connect() as conn:
        pids = conn.scalars(
            # The app's connections only: autovacuum, busy after the arrangement rewrote
            # every goal, is no part of a sweep.
            sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
        ).all()  # fmt: skip
    engine.dispose()
    return sum(cpu_seconds(pid) for pid in pids)


def _cpu(url: str, *, first: str) -> float:
    """This process's CPU seconds plus the database backends'. The backends are read through a
    connection of their own, whose cost must stay out of the interval: read them first when
    it starts and last when it ends."""
    if first == "backends":
        backends = _backends_cpu(url)
        return time.process_time() + backends
    process = time.process_time()
    return process + _backends_cpu(url)


def _clients_with_due_goals(url: str) -> list[uuid.UUID]:
    """Regular clients with at least one active goal that has a due date."""
    from app.models import Goal, User

    goals, users = Goal.__table__, User.__table__
    engine = _engine(url)
    with engine.connect() as conn:
        big = conn.scalar(
            sa.select(goals.c.client_id).group_by(goals.c.client_id)
            .order_by(sa.func.count().desc()).limit(1)
        )  # fmt: skip
        ids = conn.scalars(
            sa.select(users.c.id)
            .where(users.c.role == "client", users.c.id != big)
            .where(
                sa.exists().where(
                    goals.c.client_id == users.c.id,
                    goals.c.status == "active",
                    goals.c.next_review_due.is_not(None),
                    goals.c.deleted_at.is_(None),
                )
            )
            .order_by(users.c.id)
        ).all()
    engine.dispose()
    return list(ids)


FIRST_HOUR = 6  # the groups' reminder hours in Berlin: 06:00, 07:00, ...


def _group_instant(k: int) -> dt.datetime:
    from app.reminders.clock import local_instant

    return local_instant(DUE_AT.date(), FIRST_HOUR + k, "Europe/Berlin")


def _arrange(url: str, clients: list[uuid.UUID], groups: list[list[uuid.UUID]]) -> None:
    """Every client scheduled; the goals of the clients of every group due on ``DUE_AT``'s
    date, group ``k`` reminded at ``FIRST_HOUR + k`` o'clock (their settings), so each group
    is due at its own instant and no lagging check falls among the runs; the other clients'
    goals due far later; nothing reminded or lagging yet."""
    from app.models import Goal, Notification, NotificationSettings, ReminderSchedule, WebhookEvent

    goals, schedules = Goal.__table__, ReminderSchedule.__table__
    settings = NotificationSettings.__table__
    has_due = sa.and_(goals.c.next_review_due.is_not(None), goals.c.deleted_at.is_(None))
    instants: dict[uuid.UUID, dt.datetime] = {}
    hours: dict[uuid.UUID, int] = {}
    for k, group in enumerate(groups):
        instants.update(dict.fromkeys(group, _group_instant(k)))
        hours.update(dict.fromkeys(group, FIRST_HOUR + k))
    engine = _engine(url)
    with engine.begin() as conn:
        conn.execute(
            goals.update().where(has_due)
            .values(next_review_due=FAR, reminded_due=None, lagging=False,
                    lagging_missed=False, lagging_reviews=False)
        )  # fmt: skip
        due = [c for group in groups for c in group]
        conn.execute(
            goals.update()
            .where(has_due, goals.c.client_id.in_(due))
            .values(next_review_due=DUE_AT.date())
        )
        conn.execute(sa.delete(settings))
        now = dt.datetime.now(dt.UTC)
        conn.execute(
            sa.insert(settings),
            [{"user_id": c, "reminder_hour": h, "updated_at": now} for c, h in hours.items()],
        )
        conn.execute(sa.delete(schedules))
        far_at = dt.datetime.combine(FAR, dt.time(7), dt.UTC)
        conn.execute(
            sa.insert(schedules),
            [{"client_id": c, "next_at": instants.get(c, far_at)} for c in clients],
        )
        conn.execute(sa.delete(Notification.__table__))
        conn.execute(sa.delete(WebhookEvent.__table__))
    if engine.dialect.name == "postgresql":
        # The arrangement rewrote every goal: without a vacuum, the first run to read a page
        # prunes its dead rows, a cost of the benchmark's rewrite and not of a sweep.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("goals", "reminder_schedules", "notification_settings"):
                conn.execute(sa.text(f"VACUUM (ANALYZE) {table}"))
    engine.dispose()


@contextmanager
def _reviews_without_reminders():
    """The review path as it was before reminders: the client's timezone read, no lagging
    judgement, no schedule write."""
    from app.models import User
    from app.reminders.repository import ReviewContext
    from app.reviews import service

    saved = (service.reminders.review_context, service.reminders.judge_after_review)

    async def timezone_only(session: Any, client_id: Any, goal_id: Any) -> ReviewContext:
        timezone = await session.scalar(sa.select(User.timezone).where(User.id == client_id))
        return ReviewContext(timezone or "UTC", 9, True, None, [])

    async def no_judgement(*args: Any) -> None:
        return None

    service.reminders.review_context = timezone_only
    service.reminders.judge_after_review = no_judgement
    try:
        yield
    finally:
        service.reminders.review_context, service.reminders.judge_after_review = saved


async def _sweeps(url: str, rounds: int) -> tuple[dict[float, float], dict[float, int]]:
    from app.core.engines import dispose_engines
    from app.reminders.runner import run_once
    from app.wiring import BEFORE_COMMIT

    clients = _clients_with_due_goals(url)
    rng = random.Random(21)
    reminded: dict[float, int] = {}
    # CPU clocks tick every 10 ms (a backend's in /proc): a sweep of 10 reminders is measured
    # over ``REPEAT`` runs, each with 1 % of the clients due, so that the tick is noise of a
    # few percent, not of half the figure.
    cpu_ms: dict[float, list[float]] = {share: [] for share in SHARES}
    for n in range(rounds):
        # A first run for one client, unmeasured, stands for the minute before: a server's
        # scheduler runs every minute, its statements and pages are warm. Then the shares'
        # runs, the first share in turns (the run after the rewrite of every goal finds a
        # colder cache).
        order = SHARES if n % 2 == 0 else SHARES[::-1]
        rest = list(clients)
        rng.shuffle(rest)
        groups: list[list[uuid.UUID]] = [rest[:1]]
        shares: list[float] = []
        rest = rest[1:]
        for share in order:
            size = max(1, round(share * len(clients)))
            for _ in range(REPEAT if share == SHARES[0] else 1):
                groups.append(rest[:size])
                shares.append(share)
                rest = rest[size:]
        _arrange(url, clients, groups)
        await run_once(_group_instant(0), BEFORE_COMMIT)
        spent: dict[float, float] = dict.fromkeys(SHARES, 0.0)
        count: dict[float, int] = dict.fromkeys(SHARES, 0)
        for k, share in enumerate(shares, start=1):
            started = _cpu(url, first="backends")
            result = await run_once(_group_instant(k), BEFORE_COMMIT)
            spent[share] += _cpu(url, first="process") - started
            assert result.review_due == len(groups[k]), (result, len(groups[k]))
            reminded[share] = result.review_due
            count[share] += result.review_due
        for share in SHARES:
            cpu_ms[share].append(spent[share] * 1000 / count[share])
    await dispose_engines()
    return {share: statistics.median(v) for share, v in cpu_ms.items()}, reminded


async def _reviews(url: str, rounds: int, per_round: int) -> tuple[float, float, float]:
    import httpx

    from app.core.engines import dispose_engines
    from app.main import create_app
    from app.models import Goal
    from bench.run import mint_tokens

    tokens, _ = mint_tokens(url, 50)
    goals = Goal.__table__
    engine = _engine(url)
    from app.core.security import decode_access_token

    targets = []
    with engine.connect() as conn:
        for token in tokens:
            client_id = decode_access_token(token).user_id
            goal_id = conn.scalar(
                sa.select(goals.c.id).where(
                    goals.c.client_id == client_id, goals.c.status == "active",
                    goals.c.deleted_at.is_(None),
                ).limit(1)
            )  # fmt: skip
            if goal_id is not None:
                targets.append((token, goal_id))
    engine.dispose()
    app = create_app()
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    with_ms: list[float] = []
    without_ms: list[float] = []
    rng = random.Random(5)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:

        async def one_round() -> float:
            started = _cpu(url, first="backends")
            for _ in range(per_round):
                token, goal_id = rng.choice(targets)
                # Steady reviews, as most are: judged, not lagging (an alert is rare and
                # costs a few more statements, in tests/test_lagging.py).
                body = {"rating": rng.randint(6, 8), "gas_score": rng.choice((0, 1, None))}
                r = await http.post(
                    f"/v1/goals/{goal_id}/reviews", json=body,
                    headers={"Authorization": f"Bearer {token}"},
                )  # fmt: skip
                assert r.status_code == 201, r.text
            return (_cpu(url, first="process") - started) * 1000 / per_round

        await one_round()  # warm-up
        for _ in range(rounds):
            with_ms.append(await one_round())
            with _reviews_without_reminders():
                without_ms.append(await one_round())
    await dispose_engines()
    ratios = [b / a for a, b in zip(with_ms, without_ms, strict=True)]
    return statistics.median(ratios), statistics.median(with_ms), statistics.median(without_ms)


async def measure(url: str, *, rounds: int = 7, reviews_per_round: int = 200) -> ReminderFigures:
    from bench.run import bench_env

    bench_env()
    os.environ["WAYPOINT_DATABASE_URL"] = url
    os.environ.setdefault("WAYPOINT_LOG_LEVEL", "WARNING")
    os.environ["WAYPOINT_MAX_QUEUE_WAIT_MS"] = "60000"
    from app.core.config import get_settings

    get_settings.cache_clear()
    sweep_ms, reminded = await _sweeps(url, rounds)
    ratio, with_ms, without_ms = await _reviews(url, rounds, reviews_per_round)
    return ReminderFigures(sweep_ms, reminded, ratio, (with_ms, without_ms))


def report(figures: ReminderFigures) -> list[tuple[str, str, str, bool]]:
    """``(name, value, target, passed)`` rows."""
    low, high = SHARES
    ratio = figures.sweep_ratio
    return [
        (
            f"reminder sweep CPU per reminder, {high:.0%} / {low:.0%} due",
            f"{ratio:.2f} ({figures.sweep_ms[high]:.2f} / {figures.sweep_ms[low]:.2f} ms, "
            f"{figures.reminded[high]} / {figures.reminded[low]} reminders)",
            "0.80-1.20",
            0.8 <= ratio <= 1.2,
        ),
        (
            "review create rate with the lagging check / without",
            f"{figures.review_ratio:.2f} ({figures.review_ms[0]:.2f} / "
            f"{figures.review_ms[1]:.2f} ms CPU per review)",
            ">= 0.90",
            figures.review_ratio >= 0.9,
        ),
    ]


if __name__ == "__main__":
    result = asyncio.run(measure(sys.argv[1]))
    rows = report(result)
    if "--json" in sys.argv[2:]:  # for bench.run: the last line
        print(json.dumps(rows))
    else:
        for name, value, target, passed in rows:
            print(f"{'PASS' if passed else 'FAIL'}  {name}: {value} (target {target})")
