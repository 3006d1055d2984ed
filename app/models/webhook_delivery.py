import sqlalchemy as sa

from app.models.base import Field, SQLModel, dt, id_field, json_field, timestamp, uuid


class WebhookDelivery(SQLModel, table=True):
    """The outbox: written in the transaction of the change, delivered (and retried) later."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (sa.Index("ix_webhook_deliveries_pending", "delivered_at", "next_attempt_at"),)

    id: uuid.UUID = id_field()
    webhook_id: uuid.UUID = Field(foreign_key="webhooks.id", ondelete="CASCADE", index=True)
    event: str = Field(max_length=64)
    payload: dict = json_field(nullable=False)
    attempts: int = 0
    next_attempt_at: dt.datetime = timestamp()
    delivered_at: dt.datetime | None = timestamp(nullable=True)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: dt.datetime = timestamp()
