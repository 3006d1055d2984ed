from app.models.base import Field, SQLModel, dt, timestamp


class LoginFailure(SQLModel, table=True):
    """Failed password logins, counted per account and per address for throttling."""

    __tablename__ = "login_failures"

    id: int | None = Field(default=None, primary_key=True)
    email_key: str = Field(max_length=320, index=True)
    address: str = Field(max_length=64, index=True)
    at: dt.datetime = timestamp(index=True)
