import sqlalchemy as sa

from app.models.base import Field, SQLModel, dt, id_field, timestamp, uuid


class Review(SQLModel, table=True):
    """Append-only check-in on a goal."""

    __tablename__ = "reviews"
    __table_args__ = (
        sa.Index("ix_reviews_goal_id_created_at_id", "goal_id", "created_at", "id"),
        sa.Index("ix_reviews_client_id_id", "client_id", "id"),  # a client's reviews in id order
    )

    id: uuid.UUID = id_field()
    goal_id: uuid.UUID = Field(foreign_key="goals.id", ondelete="CASCADE")
    client_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    author_id: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    author_role: str = Field(max_length=16)
    rating: int
    gas_score: int | None = None
    achievement_status: str | None = Field(default=None, max_length=32)
    reflection: str | None = Field(default=None, max_length=5000)
    next_steps: str | None = Field(default=None, max_length=5000)
    created_at: dt.datetime = timestamp()
