"""Everything the application runs besides its routes, listed in one place.

``create_app`` hands these lists over: the before-commit hooks to the unit of work, the
background workers to the lifespan, the scrape hooks to ``GET /metrics``, the session listeners
to SQLAlchemy. Importing a module registers nothing, so a new worker, hook or listener runs
only once it is named here (the routers are listed in ``app.api.ROUTERS``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.accesslog.service import write_access_log
from app.account.resets import send_password_resets
from app.account.service import send_verification
from app.account.wakeup import RESET_WAKEUP
from app.changes.service import write_changes
from app.core.background import BackgroundWorker
from app.core.metrics import ScrapeHook, keep_metrics_fresh
from app.core.unit_of_work import BeforeCommit
from app.idempotency.service import store_idempotent_response
from app.mail.outbox import MAIL_WAKEUP
from app.mail.queue_metrics import measure_mail_queue
from app.mail.worker import send_mail
from app.reminders.metrics import measure_reminders
from app.reminders.runner import reminder_worker
from app.resources import load_documents
from app.retention.worker import sweep_retention
from app.webhooks.outbox import DELIVERY_WAKEUP, outbox_writer
from app.webhooks.queue_metrics import measure_delivery_queue
from app.webhooks.worker import deliver_webhooks

# What every unit of work writes just before COMMIT, in this order (scripts that write outside
# a request run the same list themselves, see ``app.demo.seed``).
BEFORE_COMMIT: tuple[BeforeCommit, ...] = (
    write_changes,  # the sync feed's rows, in commit order
    write_access_log,  # who else read or changed a client's data
    outbox_writer(load_documents),  # the webhook deliveries of the events services recorded
    store_idempotent_response,  # last: the response an Idempotency-Key replays
)

# What a new account sets off, in the registration's transaction: (session, user) each.
AFTER_REGISTRATION: tuple[Callable[[AsyncSession, Any], Awaitable[None]], ...] = (
    send_verification,  # the link that verifies the address (app.account)
)

# Long-running tasks every worker process runs beside its requests (``app.core.background``).
BACKGROUND_WORKERS: tuple[BackgroundWorker, ...] = (
    keep_metrics_fresh,  # this process's request metrics into the shared values
    deliver_webhooks,  # the webhook delivery queue (off with WAYPOINT_WEBHOOK_WORKER=false)
    send_mail,  # the mail outbox (off with WAYPOINT_MAIL_WORKER=false)
    sweep_retention,  # deletes what only grows (docs/retention.md; WAYPOINT_RETENTION_WORKER)
    send_password_resets,  # reset requests into links (runs where the mail worker does)
    reminder_worker(BEFORE_COMMIT),  # the reminder scheduler, once a minute
)

# Gauges measured at each scrape of ``GET /metrics`` (``app.core.metrics``).
SCRAPE_HOOKS: tuple[ScrapeHook, ...] = (
    measure_delivery_queue,
    measure_mail_queue,
    measure_reminders,
)

# Process-wide SQLAlchemy session events: (target, event name, listener).
SESSION_LISTENERS: tuple[tuple[type[Session], str, Callable[[Any], None]], ...] = (
    # A commit that left work for a worker wakes it; a rollback forgets (``app.core.wakeups``).
    (Session, "after_commit", DELIVERY_WAKEUP.after_commit),
    (Session, "after_rollback", DELIVERY_WAKEUP.after_rollback),
    (Session, "after_commit", MAIL_WAKEUP.after_commit),
    (Session, "after_rollback", MAIL_WAKEUP.after_rollback),
    (Session, "after_commit", RESET_WAKEUP.after_commit),
    (Session, "after_rollback", RESET_WAKEUP.after_rollback),
)
