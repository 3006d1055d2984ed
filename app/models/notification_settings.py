import sqlalchemy as sa

from app.models.base import Field, SQLModel, dt, timestamp, uuid


class NotificationSettings(SQLModel, table=True):
    """An account's choices about reminders and alerts; no row means the defaults."""

    __tablename__ = "notification_settings"

    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)
    review_reminders: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    reminder_hour: int = Field(default=9, sa_column_kwargs={"server_default": sa.text("9")})
    email: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    include_goal_titles: bool = Field(
        default=False, sa_column_kwargs={"server_default": sa.false()}
    )
    lagging_alerts: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    updated_at: dt.datetime = timestamp()
