from app.models.base import Field, SQLModel, dt, timestamp, uuid


class ReminderSchedule(SQLModel, table=True):
    """When the scheduler next has something to do for a client: the earliest of their goals'
    review reminders and lagging checks. Never later than the truth (an early wake finds
    nothing and sets the next instant), so the scheduler reads only the rows that are due."""

    __tablename__ = "reminder_schedules"

    client_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)
    next_at: dt.datetime = timestamp(index=True)
