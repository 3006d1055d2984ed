"""Every table. Importing this package registers them all on ``SQLModel.metadata``."""

from app.models.base import SQLModel, new_id  # noqa: I001  (sets the naming convention first)
from app.models.access_log import AccessLogEntry
from app.models.account_request import AccountRequest
from app.models.account_token import AccountToken
from app.models.auth_session import AuthSession
from app.models.care_invite import CareInvite
from app.models.care_link import CareLink
from app.models.change import Change
from app.models.encouragement import Encouragement
from app.models.goal import Goal
from app.models.idempotency_key import IdempotencyKey
from app.models.login_failure import LoginFailure
from app.models.mail_message import MailMessage
from app.models.notification import Notification
from app.models.notification_settings import NotificationSettings
from app.models.password_reset_request import PasswordResetRequest
from app.models.personal_access_token import PersonalAccessToken
from app.models.refresh_token import RefreshToken
from app.models.reminder_schedule import ReminderSchedule
from app.models.review import Review
from app.models.step import Step
from app.models.sync_horizon import SyncHorizon
from app.models.user import User
from app.models.webhook import Webhook
from app.models.webhook_delivery import WebhookDelivery
from app.models.webhook_event import WebhookEvent

metadata = SQLModel.metadata

__all__ = [
    "AccessLogEntry",
    "AccountRequest",
    "AccountToken",
    "AuthSession",
    "CareInvite",
    "CareLink",
    "Change",
    "Encouragement",
    "Goal",
    "IdempotencyKey",
    "LoginFailure",
    "MailMessage",
    "Notification",
    "NotificationSettings",
    "PasswordResetRequest",
    "PersonalAccessToken",
    "RefreshToken",
    "ReminderSchedule",
    "Review",
    "Step",
    "SyncHorizon",
    "User",
    "Webhook",
    "WebhookDelivery",
    "WebhookEvent",
    "metadata",
    "new_id",
]
