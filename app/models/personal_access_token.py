from app.models.base import Field, SQLModel, dt, id_field, timestamp, uuid


class PersonalAccessToken(SQLModel, table=True):
    __tablename__ = "personal_access_tokens"

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=100)
    scope: str = Field(max_length=500)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: dt.datetime = timestamp()
    expires_at: dt.datetime | None = timestamp(nullable=True)
    revoked_at: dt.datetime | None = timestamp(nullable=True)
    last_used_at: dt.datetime | None = timestamp(nullable=True)
