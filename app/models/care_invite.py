from app.models.base import Field, SQLModel, dt, id_field, timestamp, uuid


class CareInvite(SQLModel, table=True):
    __tablename__ = "care_invites"

    id: uuid.UUID = id_field()
    therapist_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    code_hash: str = Field(max_length=64, unique=True)
    created_at: dt.datetime = timestamp()
    expires_at: dt.datetime = timestamp()
    used_at: dt.datetime | None = timestamp(nullable=True)
