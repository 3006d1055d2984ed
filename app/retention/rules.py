"""What the retention sweep deletes: one ``Rule`` per kind of row that only grows with use.

Each rule names its table, which rows are no longer needed (an expression of the settings and
the sweep's ``now``) and the setting that says how long rows are kept; docs/retention.md says
why for each. A new table that grows adds its rule here, in one line, and to the docs.

Every other table is in ``KEPT``, with the reason it needs no rule; a test checks that each
table is in one or the other, so a new table cannot be forgotten.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.account.service import WINDOW as ACCOUNT_REQUEST_WINDOW
from app.core.config import Settings
from app.models import (
    AccountRequest,
    AccountToken,
    AuthSession,
    CareInvite,
    Change,
    IdempotencyKey,
    LoginFailure,
    MailMessage,
    Notification,
    PersonalAccessToken,
    RefreshToken,
    WebhookDelivery,
)
from app.retention.repository import raise_sync_horizon

Expired = Callable[[Settings, dt.datetime], sa.ColumnElement[bool]]
AfterDelete = Callable[[AsyncSession, Sequence[sa.Row[Any]], dt.datetime], Awaitable[None]]


@dataclass(frozen=True)
class Rule:
    table: sa.Table
    expired: Expired  # the rows no longer needed, as of ``now``
    # The setting (``Settings`` field) that says how long rows are kept; None: a fixed period
    # of the table's own domain (its rule says which).
    setting: str | None
    # Rows numbered in the order they were written, their age following that order: each
    # batch looks only at the oldest ``batch`` rows in this order (no index on the age).
    oldest_first: sa.Column[Any] | None = None
    returning: tuple[sa.Column[Any], ...] = ()  # more columns of the deleted rows
    after_delete: AfterDelete | None = None  # run in the batch's transaction

    @property
    def key(self) -> sa.Column[Any]:
        (column,) = self.table.primary_key.columns
        return column

    @property
    def name(self) -> str:
        return self.table.name


def _grace(settings: Settings, now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(days=settings.auth_retention_days)


DELIVERIES = WebhookDelivery.__table__.c
MAIL = MailMessage.__table__.c
ACCOUNT_REQUESTS = AccountRequest.__table__.c
ACCOUNT_TOKENS = AccountToken.__table__.c
KEYS = IdempotencyKey.__table__.c
FAILURES = LoginFailure.__table__.c
REFRESH = RefreshToken.__table__
SESSIONS = AuthSession.__table__.c
INVITES = CareInvite.__table__.c
PERSONAL = PersonalAccessToken.__table__.c
CHANGES = Change.__table__


def _answered_delivery(settings: Settings, now: dt.datetime) -> sa.ColumnElement[bool]:
    """Delivered or given up, the last attempt older than the webhook retention (a pending
    delivery is never deleted: it is still to be attempted)."""
    cutoff = now - dt.timedelta(days=settings.webhook_retention_days)
    answered = DELIVERIES.status.in_(("delivered", "failed"))
    return sa.and_(answered, DELIVERIES.next_attempt_at < cutoff)


def _finished_mail(settings: Settings, now: dt.datetime) -> sa.ColumnElement[bool]:
    """Sent or given up (its bodies already cleared), the last attempt older than the mail
    retention; a pending message is never deleted."""
    cutoff = now - dt.timedelta(days=settings.mail_retention_days)
    return sa.and_(MAIL.status.in_(("sent", "failed")), MAIL.next_attempt_at < cutoff)


def _expired_key(settings: Settings, now: dt.datetime) -> sa.ColumnElement[bool]:
    """Older than its time to live: a retry with the same key would be a new request."""
    return KEYS.created_at < now - dt.timedelta(hours=settings.idempotency_ttl_hours)


def _outside_window(settings: Settings, now: dt.datetime) -> sa.ColumnElement[bool]:
    """No longer counted by the login throttle."""
    return FAILURES.at < now - dt.timedelta(seconds=settings.login_window_seconds)


def _old_account_request(settings: Settings, now: dt.datetime) -> sa.ColumnElement[bool]:
    """No longer counted by the throttle of password-reset and verification links (its
    window is fixed in ``app.account.service``)."""
    return ACCOUNT_REQUESTS.at < now - ACCOUNT_REQUEST_WINDOW


def _expired_account_token(settings: Settings, now: dt.datetime) -> sa.ColumnElement[bool]:
    """A reset or verification link expired past the grace period (used or not)."""
    return ACCOUNT_TOKENS.expires_at < _grace(settings, now)


def _spent_refresh_token(settings: Settings, now: dt.datetime) -> sa.ColumnElement[bool]:
    cutoff = _grace(settings, now)
    return sa.or_(REFRESH.c.expires_at < cutoff, REFRESH.c.revoked_at < cutoff)


def _dead_session(settings: Settings, now: dt.datetime) -> sa.ColumnElement[bool]:
    """Revoked past the grace period, or older than it with no refresh token left: every
    token of its family expired long ago (and was deleted), so nothing can use it again."""
    cutoff = _grace(settings, now)
    tokens_left = sa.exists().where(REFRESH.c.family_id == SESSIONS.id)
    return sa.or_(SESSIONS.revoked_at < cutoff, sa.and_(SESSIONS.created_at < cutoff, ~tokens_left))


def _expired_invite(settings: Settings, now: dt.datetime) -> sa.ColumnElement[bool]:
    """Expired past the grace period (a used one too: the care link it made stays)."""
    return INVITES.expires_at < _grace(settings, now)


def _spent_personal_token(settings: Settings, now: dt.datetime) -> sa.ColumnElement[bool]:
    cutoff = _grace(settings, now)
    return sa.or_(PERSONAL.expires_at < cutoff, PERSONAL.revoked_at < cutoff)


def _old_change(settings: Settings, now: dt.datetime) -> sa.ColumnElement[bool]:
    """Older than the sync retention, but never the newest row: SQLite numbers a new row one
    past the highest left, and a number used twice would hide the new row from followers."""
    c = CHANGES.c
    newest = sa.select(sa.func.max(c.seq)).scalar_subquery()
    return sa.and_(c.at < now - dt.timedelta(days=settings.sync_retention_days), c.seq < newest)


def _old_notification(settings: Settings, now: dt.datetime) -> sa.ColumnElement[bool]:
    """A reminder or alert older than the feed keeps (read or not)."""
    table = Notification.__table__
    return table.c.created_at < now - dt.timedelta(days=settings.notification_retention_days)


RULES: tuple[Rule, ...] = (
    Rule(WebhookDelivery.__table__, _answered_delivery, "webhook_retention_days"),
    Rule(MailMessage.__table__, _finished_mail, "mail_retention_days"),
    Rule(Notification.__table__, _old_notification, "notification_retention_days"),
    Rule(IdempotencyKey.__table__, _expired_key, "idempotency_ttl_hours"),
    Rule(LoginFailure.__table__, _outside_window, "login_window_seconds"),
    Rule(AccountRequest.__table__, _old_account_request, None),
    Rule(AccountToken.__table__, _expired_account_token, "auth_retention_days"),
    Rule(REFRESH, _spent_refresh_token, "auth_retention_days"),
    Rule(AuthSession.__table__, _dead_session, "auth_retention_days"),
    Rule(CareInvite.__table__, _expired_invite, "auth_retention_days"),
    Rule(PersonalAccessToken.__table__, _spent_personal_token, "auth_retention_days"),
    Rule(
        CHANGES, _old_change, "sync_retention_days",
        oldest_first=CHANGES.c.seq, returning=(CHANGES.c.tx,), after_delete=raise_sync_horizon,
    ),
)  # fmt: skip

# Tables without a rule, and why.
KEPT: dict[str, str] = {
    "users": "accounts live until erased (DELETE /v1/me), which removes their rows everywhere",
    "goals": "the client's own data, until they delete it or erase the account",
    "steps": "the client's own data, until they delete it or erase the account",
    "reviews": "the client's own data, until they delete it or erase the account",
    "encouragements": "the client's own data, until they delete it or erase the account",
    "care_links": "the history of who worked with the client, part of their data",
    "webhooks": "subscriptions, until their owner deletes them",
    "access_log": "the client's record of who read their data, kept as long as the account",
    "webhook_events": "deleted by the delivery worker as it fans each one out",
    "password_reset_requests": "deleted by the reset worker as it handles each one",
    "sync_horizon": "one row",
    "notification_settings": "one row per account that changed its settings, erased with it",
    "reminder_schedules": "one row per client with a reminder to come, deleted when none is",
}
