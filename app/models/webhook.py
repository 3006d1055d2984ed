from app.models.base import Field, SQLModel, dt, id_field, json_field, timestamp, uuid


class Webhook(SQLModel, table=True):
    __tablename__ = "webhooks"

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    url: str = Field(max_length=2000)
    events: list[str] = json_field(nullable=False)
    secret: str = Field(max_length=128)
    active: bool = True
    created_at: dt.datetime = timestamp()
