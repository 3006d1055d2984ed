"""The mail queue in ``/metrics``: messages sent and given up (counted by the workers), and
what is waiting (measured in the database at each scrape, the same value whichever worker
measures it, hence ``mostrecent``)."""

from __future__ import annotations

from prometheus_client import Counter

from app.core import metrics
from app.core.clock import utcnow
from app.core.sessions import new_session
from app.mail.repository import MEASURE

SENT = Counter(
    "waypoint_mail_sent", "Messages handed to the SMTP server (or written to the Maildir).",
    ("template",),
)  # fmt: skip
FAILED = Counter(
    "waypoint_mail_failed",
    "Messages given up: refused for good (SMTP 5xx) or not taken for the whole retry period.",
    ("template",),
)
RETRIED = Counter(
    "waypoint_mail_attempts_failed",
    "Attempts that will be made again (SMTP 4xx, no server, connection lost).",
)
PENDING = metrics.gauge(
    "waypoint_mail_pending", "Messages queued and not yet sent or given up.", mode="mostrecent"
)
OLDEST = metrics.gauge(
    "waypoint_mail_oldest_waiting_seconds",
    "How long the oldest message not yet sent has waited since it was queued; 0 when none.",
    mode="mostrecent",
)


async def measure_mail_queue() -> None:
    async with new_session(write=False) as session:
        pending, oldest = (await session.execute(MEASURE)).one()
    PENDING.set(pending)
    OLDEST.set(max(0.0, (utcnow() - oldest).total_seconds()) if oldest else 0.0)
