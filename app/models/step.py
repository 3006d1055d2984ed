import datetime as _dt

import sqlalchemy as sa

from app.models.base import Field, SQLModel, dt, id_field, timestamp, uuid


class Step(SQLModel, table=True):
    __tablename__ = "steps"
    __table_args__ = (
        sa.Index("ix_steps_goal_id_position_id", "goal_id", "position", "id"),
        sa.Index("ix_steps_client_id_id", "client_id", "id"),  # a client's steps in id order
    )

    id: uuid.UUID = id_field()
    goal_id: uuid.UUID = Field(foreign_key="goals.id", ondelete="CASCADE")
    client_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    title: str = Field(max_length=200)
    notes: str | None = Field(default=None, max_length=5000)
    status: str = Field(default="todo", max_length=8)
    position: int = 0
    due_date: _dt.date | None = None
    completed_at: dt.datetime | None = timestamp(nullable=True)
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    version: int = 1
    created_at: dt.datetime = timestamp()
    updated_at: dt.datetime = timestamp()
    deleted_at: dt.datetime | None = timestamp(nullable=True)
