"""``queue_mail``: a message stored in the caller's transaction, sent after its commit.

A rolled-back action sends nothing; a committed one has its message committed with it, so a
crash right after the commit still sends it (the worker finds it on restart). The message is
rendered here, once, and stored whole with its ``Message-ID``: every attempt sends the same
bytes' worth of message, and a receiver can tell a retry from a second message.

A commit that queued a message wakes this process's mail workers at once (``MAIL_WAKEUP``,
its listeners listed in ``app.wiring``); the database row stays the truth, and a worker of another
process finds it at its next poll.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from email.utils import getaddresses

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.config import get_settings
from app.core.wakeups import CommitWakeup
from app.mail.repository import insert_message
from app.mail.templates import render
from app.models import new_id

# The mail workers of this process, woken when a commit queued a message.
MAIL_WAKEUP = CommitWakeup("mail_queued")
# Headers a caller may not set: the outbox writes them itself.
_OWN_HEADERS = frozenset(
    {"from", "to", "subject", "date", "message-id", "content-type", "mime-version"}
)


def message_id_domain(sender: str) -> str:
    """The domain of the sender's address (``localhost`` when it has none)."""
    addresses = getaddresses([sender])
    address = addresses[0][1] if addresses else ""
    return address.rpartition("@")[2] or "localhost"


def _checked_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    checked: dict[str, str] = {}
    for name, value in (headers or {}).items():
        if name.lower() in _OWN_HEADERS or not name.isascii() or ":" in name:
            raise ValueError(f"header {name!r} cannot be set on a queued message")
        if "\n" in value or "\r" in value:
            raise ValueError(f"header {name!r} spans lines")
        checked[name] = value
    return checked


async def queue_mail(
    session: AsyncSession,
    *,
    to: str,
    template: str,
    context: Mapping[str, object],
    user_id: str | uuid.UUID | None = None,
    headers: Mapping[str, str] | None = None,
) -> str:
    """Store one message, rendered from ``app/mail/templates/<template>.txt`` (and ``.html``
    when there is one) with ``context``, in ``session``'s transaction (written, not
    committed), with ``headers`` added (``List-Unsubscribe``, say). Its id."""
    if "\n" in to or "\r" in to or "," in to or "@" not in to:
        raise ValueError("not one e-mail address")
    rendered = render(template, context)
    sender = get_settings().mail_from
    message_uuid = new_id()
    now = utcnow()
    extra = _checked_headers(headers)
    await insert_message(
        session,
        {
            "id": message_uuid,
            "user_id": uuid.UUID(str(user_id)) if user_id is not None else None,
            "template": template,
            "message_id": f"<{message_uuid}@{message_id_domain(sender)}>",
            "sender": sender,
            "recipient": to,
            "subject": rendered.subject,
            "headers": json.dumps(extra) if extra else None,
            "text_body": rendered.text,
            "html_body": rendered.html,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        },
    )
    MAIL_WAKEUP.note(session)
    return str(message_uuid)
