from app.models.base import Field, SQLModel, dt, id_field, timestamp, uuid


class RefreshToken(SQLModel, table=True):
    """One link in a rotation chain; all tokens of one login share ``family_id``."""

    __tablename__ = "refresh_tokens"

    id: uuid.UUID = id_field()
    family_id: uuid.UUID = Field(index=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    scope: str = Field(max_length=500)
    created_at: dt.datetime = timestamp()
    # Indexed for the retention sweep (app/retention), which deletes by these two.
    expires_at: dt.datetime = timestamp(index=True)
    used_at: dt.datetime | None = timestamp(nullable=True)
    revoked_at: dt.datetime | None = timestamp(nullable=True, index=True)
