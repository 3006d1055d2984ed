import datetime as _dt
from typing import Any

import sqlalchemy as sa

from app.models.base import Field, SQLModel, dt, id_field, json_field, timestamp, uuid


class Goal(SQLModel, table=True):
    __tablename__ = "goals"
    __table_args__ = (
        sa.Index("ix_goals_client_id_updated_at_id", "client_id", "updated_at", "id"),
        sa.Index("ix_goals_client_id_id", "client_id", "id"),  # the sync snapshot's order
        sa.Index(
            "uq_goals_client_id_external_id",
            "client_id",
            "external_id",
            unique=True,
            sqlite_where=sa.text("external_id IS NOT NULL AND deleted_at IS NULL"),
            postgresql_where=sa.text("external_id IS NOT NULL AND deleted_at IS NULL"),
        ),
    )

    id: uuid.UUID = id_field()
    client_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    created_by: uuid.UUID | None = Field(
        default=None, foreign_key="users.id", ondelete="SET NULL", index=True
    )
    title: str = Field(max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    motivation: str | None = Field(default=None, max_length=5000)
    success_criteria: str | None = Field(default=None, max_length=5000)
    category: str | None = Field(default=None, max_length=100)
    priority: str | None = Field(default=None, max_length=16)
    status: str = Field(max_length=16)
    achievement_status: str | None = Field(default=None, max_length=32)
    visibility: str = Field(default="shared", max_length=16)
    target_date: _dt.date | None = None
    review_every_days: int | None = None
    next_review_due: _dt.date | None = Field(default=None, index=True)
    external_id: str | None = Field(default=None, max_length=200)
    gas_levels: dict[str, Any] | None = json_field()
    gas_weight: int = 1
    completed_at: dt.datetime | None = timestamp(nullable=True)
    # Progress kept with the goal so a page of goals needs no per-goal query; steps update it
    # with atomic increments, reviews with their latest values.
    steps_total: int = 0
    steps_done: int = 0
    latest_rating: int | None = None
    latest_gas_score: int | None = None
    last_review_at: dt.datetime | None = timestamp(nullable=True)
    # Each celebration is written once: the first writer to set its mark creates it.
    celebrated_half_at: dt.datetime | None = timestamp(nullable=True)
    celebrated_all_steps_at: dt.datetime | None = timestamp(nullable=True)
    celebrated_completed_at: dt.datetime | None = timestamp(nullable=True)
    # Lagging behind (app/reminders/lagging.py): ``lagging`` is what the document shows; it is
    # ``lagging_reviews`` (rules 2 and 3, on the latest reviews) or ``lagging_missed`` (rule 1,
    # as last judged), for an active goal. Alerts go out when it turns true.
    lagging: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    lagging_reviews: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    lagging_missed: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    # The ``next_review_due`` last reminded: each due date is reminded once.
    reminded_due: _dt.date | None = None
    version: int = 1
    created_at: dt.datetime = timestamp()
    updated_at: dt.datetime = timestamp()
    deleted_at: dt.datetime | None = timestamp(nullable=True)
