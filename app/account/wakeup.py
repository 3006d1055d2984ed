"""Waking this process's reset workers when a commit noted a password reset request
(``app.core.wakeups``; the session listeners are listed in ``app.wiring``)."""

from __future__ import annotations

from app.core.wakeups import CommitWakeup

RESET_WAKEUP = CommitWakeup("reset_requested")
