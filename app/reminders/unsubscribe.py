"""The one-click unsubscribe link of reminder e-mails (RFC 8058).

The token is the account's id and a MAC of it under the server's key: unguessable, moved to
no other account, and it needs no row (the same in every reminder the account receives)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

from app.core.config import get_settings


def _mac(user_id: uuid.UUID) -> str:
    key = get_settings().signing_key.encode()
    digest = hmac.new(key, b"waypoint-unsubscribe:" + user_id.bytes, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def unsubscribe_token(user_id: uuid.UUID) -> str:
    return f"{user_id.hex}{_mac(user_id)}"


def unsubscribe_url(user_id: uuid.UUID) -> str:
    """Where a mail client POSTs to unsubscribe: an address the API answers."""
    base = get_settings().api_links_base
    return f"{base}/v1/notifications/unsubscribe/{unsubscribe_token(user_id)}"


def account_of(token: str) -> uuid.UUID | None:
    """The account a genuine token names; None for anything else."""
    try:
        user_id = uuid.UUID(hex=token[:32])
    except ValueError:
        return None
    if not hmac.compare_digest(token[32:].encode(), _mac(user_id).encode()):
        return None
    return user_id
