"""The scheduler in ``/metrics``: how far behind it is (measured in the database at each
scrape, the same value whichever worker measures it) and what its runs created."""

from __future__ import annotations

from prometheus_client import Counter

from app.core import metrics
from app.core.clock import utcnow
from app.core.sessions import new_session
from app.reminders import repository

DUE = metrics.gauge(
    "waypoint_reminders_clients_due",
    "Clients whose next reminder instant has come and no scheduler run has handled yet.",
    mode="mostrecent",
)
OLDEST_DUE = metrics.gauge(
    "waypoint_reminders_oldest_due_seconds",
    "How long the most overdue client has waited for the scheduler (0 when none).",
    mode="mostrecent",
)
NOTIFICATIONS = Counter(
    "waypoint_reminder_notifications",
    "Notifications the scheduler's runs created, by kind.",
    ["kind"],
)


def count_run(review_due: int, goal_lagging: int) -> None:
    NOTIFICATIONS.labels("review_due").inc(review_due)
    NOTIFICATIONS.labels("goal_lagging").inc(goal_lagging)


async def measure_reminders() -> None:
    """Scrape hook (``create_app`` registers it)."""
    now = utcnow()
    async with new_session(write=False) as session:
        due, oldest = await repository.due_backlog(session, now)
    DUE.set(due)
    OLDEST_DUE.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
