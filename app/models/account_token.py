from app.models.base import Field, SQLModel, dt, id_field, timestamp, uuid


class AccountToken(SQLModel, table=True):
    """A single-use link sent by e-mail: a password reset, an address to verify, a new
    address to confirm (``kind``). Only the token's SHA-256 is kept; ``email`` is the address
    the link was sent to (for a change of address, the new one). Used, superseded by a newer
    link of the same kind, or past ``expires_at``, it opens nothing."""

    __tablename__ = "account_tokens"

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    kind: str = Field(max_length=32)
    token_hash: str = Field(max_length=64, unique=True)
    email: str = Field(max_length=320)
    created_at: dt.datetime = timestamp()
    expires_at: dt.datetime = timestamp()
    used_at: dt.datetime | None = timestamp(nullable=True)
