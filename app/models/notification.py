import sqlalchemy as sa

from app.models.base import Field, SQLModel, dt, id_field, json_field, timestamp, uuid


class Notification(SQLModel, table=True):
    """One entry of an account's in-app feed: a review reminder or a lagging-behind alert.

    It carries no goal text (only ids): an app shows the goals it may still read."""

    __tablename__ = "notifications"
    __table_args__ = (
        sa.Index("ix_notifications_user_id_created_at_id", "user_id", "created_at", "id"),
    )

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")  # the recipient
    kind: str = Field(max_length=16)
    # The client it is about. No foreign key: a therapist's alert stays in their feed when the
    # client erases their account (only the id stays, as in change rows; the erasure rewrites
    # the text that named them, ``app.reminders.alerts.forget_client``).
    client_id: uuid.UUID = Field(index=True)
    goal_ids: list[str] = json_field(nullable=False)
    title: str = Field(max_length=200)
    body: str = Field(max_length=1000)
    created_at: dt.datetime = timestamp(index=True)  # the retention sweep's order
    read_at: dt.datetime | None = timestamp(nullable=True)
