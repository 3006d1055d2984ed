from app.models.base import Field, SQLModel, dt, timestamp


class PasswordResetRequest(SQLModel, table=True):
    """A password reset asked for, not yet handled: the request writes only this row, known
    address or not, so its answer takes the same work either way (no account enumeration).
    The reset worker (``app/account/resets.py``) takes it, sends the link when an account has
    the address, and deletes it."""

    __tablename__ = "password_reset_requests"

    id: int | None = Field(default=None, primary_key=True)
    email_key: str = Field(max_length=320)
    created_at: dt.datetime = timestamp()
