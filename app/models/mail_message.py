import sqlalchemy as sa

from app.models.base import Field, SQLModel, dt, id_field, timestamp, uuid


class MailMessage(SQLModel, table=True):
    """The mail outbox: one message, written in the transaction of the action that causes it
    and sent (and retried) later by the mail worker (``app/mail/worker.py``).

    The message is rendered when queued and stored whole, so every attempt sends the same
    message with the same ``Message-ID`` and ``Date``. A claimed message's
    ``next_attempt_at`` is pushed past the attempt's time limit (a lease): no other worker
    takes it meanwhile, and one whose worker died mid-attempt is taken again later.

    Once sent or given up, ``text_body`` and ``html_body`` are cleared: a link in them is a
    credential, and no copy of it is kept. ``user_id``: the account the message is about;
    erasing the account erases its messages."""

    __tablename__ = "mail_messages"
    __table_args__ = (
        sa.Index("ix_mail_messages_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: uuid.UUID = id_field()
    user_id: uuid.UUID | None = Field(
        default=None, foreign_key="users.id", ondelete="CASCADE", index=True
    )
    template: str = Field(max_length=64)
    message_id: str = Field(max_length=255)
    sender: str = Field(max_length=320)
    recipient: str = Field(max_length=320)
    subject: str = Field(max_length=255)
    headers: str | None = Field(default=None, sa_type=sa.Text)  # extra headers, JSON object
    text_body: str | None = Field(default=None, sa_type=sa.Text)
    html_body: str | None = Field(default=None, sa_type=sa.Text)
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    next_attempt_at: dt.datetime = timestamp()
    sent_at: dt.datetime | None = timestamp(nullable=True)
    created_at: dt.datetime = timestamp()
