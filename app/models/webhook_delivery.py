import sqlalchemy as sa

from app.models.base import Field, SQLModel, dt, id_field, timestamp, uuid


class WebhookDelivery(SQLModel, table=True):
    """The outbox: written in the transaction of the change, delivered (and retried) later.

    ``body`` is the exact JSON sent (and signed) on every attempt. A claimed delivery's
    ``next_attempt_at`` is pushed past the attempt's time limit (a lease), so no other worker
    takes it meanwhile and one that crashed mid-attempt is taken again later.

    ``client_id``: the client the event is about. Erasing that client erases the deliveries
    (a therapist's included: their bodies hold the client's data); null only for deliveries
    made before migration 0008. Written by the fan-out, off the path of the change."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        sa.Index("ix_webhook_deliveries_user_id_created_at_id", "user_id", "created_at", "id"),
    )

    id: uuid.UUID = id_field()
    webhook_id: uuid.UUID
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    client_id: uuid.UUID | None = Field(
        default=None, foreign_key="users.id", ondelete="CASCADE", index=True
    )
    event: str = Field(max_length=64)
    body: str = Field(sa_type=sa.Text)
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    next_attempt_at: dt.datetime = timestamp()
    delivered_at: dt.datetime | None = timestamp(nullable=True)
    created_at: dt.datetime = timestamp()
