from app.models.base import Field, SQLModel, dt, timestamp, uuid


class AuthSession(SQLModel, table=True):
    """One password login: the refresh-token family its access tokens name in ``sid``.

    Looked up by primary key when an access token is used (see ``app/auth/sessions.py``), so
    logging out, a reused refresh token and erasing the account stop its access tokens at
    once. Deleting the user deletes its sessions, and a missing session is a revoked one."""

    __tablename__ = "auth_sessions"

    id: uuid.UUID = Field(primary_key=True)  # the family_id of its refresh tokens
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    created_at: dt.datetime = timestamp()
    # Shown in the account's list of sessions: the device that logged in, and when the session
    # last logged in or refreshed its tokens (using an access token writes nothing).
    user_agent: str | None = Field(default=None, max_length=255)
    last_used_at: dt.datetime | None = timestamp(nullable=True)
    revoked_at: dt.datetime | None = timestamp(nullable=True)
