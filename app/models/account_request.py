import sqlalchemy as sa

from app.models.base import Field, SQLModel, dt, timestamp


class AccountRequest(SQLModel, table=True):
    """One request that sends a link (a password reset, a new verification link), counted per
    ``key`` (an e-mail address, a network address, an account) for throttling. Kept in the
    database so every worker and server counts the same requests."""

    __tablename__ = "account_requests"
    __table_args__ = (sa.Index("ix_account_requests_kind_key_at", "kind", "key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    key: str = Field(max_length=320)
    at: dt.datetime = timestamp(index=True)
