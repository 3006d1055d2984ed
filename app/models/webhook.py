from app.models.base import Field, SQLModel, dt, id_field, json_field, timestamp, uuid


class Webhook(SQLModel, table=True):
    __tablename__ = "webhooks"

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    url: str = Field(max_length=2000)
    events: list[str] = json_field(nullable=False)
    # Kept as issued: every delivery is signed with it (HMAC needs the key itself). Shown once.
    secret: str = Field(max_length=128)
    active: bool = True
    # The first failed attempt since the last delivered one; a webhook whose every attempt has
    # failed for WEBHOOK_DISABLE_AFTER is disabled (active false, disabled_at set).
    failing_since: dt.datetime | None = timestamp(nullable=True)
    disabled_at: dt.datetime | None = timestamp(nullable=True)
    created_at: dt.datetime = timestamp()
