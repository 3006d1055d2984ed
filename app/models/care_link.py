import sqlalchemy as sa

from app.models.base import Field, SQLModel, dt, id_field, timestamp, uuid


class CareLink(SQLModel, table=True):
    """A therapist working with a client. Ended links stay as history (``ended_at``)."""

    __tablename__ = "care_links"
    __table_args__ = (
        sa.Index(
            "uq_care_links_active_pair",
            "therapist_id",
            "client_id",
            unique=True,
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        ),
        sa.Index("ix_care_links_client_id_ended_at", "client_id", "ended_at"),
    )

    id: uuid.UUID = id_field()
    therapist_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    client_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    created_at: dt.datetime = timestamp()
    ended_at: dt.datetime | None = timestamp(nullable=True)
