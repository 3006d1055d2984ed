import sqlalchemy as sa

from app.models.base import Field, SQLModel, dt, timestamp, uuid


class WebhookEvent(SQLModel, table=True):
    """The outbox's first half: one row per event, written in the transaction of the change.

    The delivery worker turns each into one ``WebhookDelivery`` per subscribed webhook and
    deletes it, in one transaction. The rule of who hears it is applied as of ``created_at``
    (the time of the change): the care links and webhooks of that moment, and ``shared`` and
    ``author_id`` as the change left the object. ``body`` is the exact JSON every subscriber
    receives. ``client_id`` cascades, so an erased client's unsent events go with them.

    ``seq`` is the row's only index (SQLite's rowid): a change writes one row and one page, not
    ten deliveries with three indexes each."""

    __tablename__ = "webhook_events"

    seq: int | None = Field(
        default=None, sa_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
    )
    event: str = Field(max_length=64)
    body: str = Field(sa_type=sa.Text)
    client_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    shared: bool
    author_id: uuid.UUID | None = None
    created_at: dt.datetime = timestamp()
