"""Naming convention and shared column helpers. Imported before any table is defined."""

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel
from uuid_utils.compat import uuid7

from app.core.clock import utcnow
from app.core.columns import JSONType, UTCDateTime

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> uuid.UUID:
    """Time-ordered UUIDv7: never enumerable, and index-friendly."""
    return uuid7()


def id_field() -> Any:
    return Field(default_factory=new_id, primary_key=True)


def timestamp(*, nullable: bool = False, index: bool = False) -> Any:
    if nullable:
        return Field(default=None, sa_type=UTCDateTime, nullable=True, index=index)
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=index)


def json_field(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_type=JSONType, nullable=nullable)


__all__ = ["SQLModel", "Field", "dt", "uuid", "sa", "new_id", "id_field", "timestamp", "json_field"]
