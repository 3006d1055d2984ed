import sqlalchemy as sa

from app.models.base import Field, SQLModel, dt, id_field, timestamp, uuid


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: uuid.UUID = id_field()
    email: str = Field(max_length=320)
    email_key: str = Field(max_length=320, unique=True)  # lower-cased: e-mail is case-insensitive
    display_name: str = Field(max_length=100)
    role: str = Field(max_length=16)
    timezone: str = Field(default="UTC", max_length=64)
    password_hash: str = Field(max_length=255)
    # Set when a link sent to ``email`` came back (verification, or a confirmed change).
    email_verified: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    created_at: dt.datetime = timestamp()
    updated_at: dt.datetime = timestamp()
