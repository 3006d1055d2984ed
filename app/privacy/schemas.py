"""The export document: everything of one's own account (docs/integrators.md, "Privacy:
access log, export, erasure")."""

from __future__ import annotations

import datetime as dt
import uuid

from app.accesslog.router import AccessLogItem
from app.auth.schemas import UserOut
from app.core.schemas import ResponseBody
from app.encouragements.schemas import EncouragementOut
from app.goals.schemas import GoalOut
from app.reviews.schemas import ReviewOut
from app.steps.schemas import StepOut


class ExportedCareLink(ResponseBody):
    id: uuid.UUID
    therapist_id: uuid.UUID
    client_id: uuid.UUID
    created_at: dt.datetime
    ended_at: dt.datetime | None


class ExportedToken(ResponseBody):
    id: uuid.UUID
    name: str
    scopes: list[str]
    expires_at: dt.datetime | None
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class ExportedWebhook(ResponseBody):
    id: uuid.UUID
    url: str
    events: list[str]
    active: bool
    created_at: dt.datetime


class ExportDocument(ResponseBody):
    """Everything of the caller's (a therapist: the goals, steps and reviews they wrote).
    No password hash, no token or webhook secret. `access_log` only for clients."""

    exported_at: dt.datetime
    account: UserOut
    care_links: list[ExportedCareLink]
    goals: list[GoalOut]
    steps: list[StepOut]
    reviews: list[ReviewOut]
    encouragements_sent: list[EncouragementOut]
    encouragements_received: list[EncouragementOut]
    personal_tokens: list[ExportedToken]
    webhooks: list[ExportedWebhook]
    access_log: list[AccessLogItem] | None = None
