"""The declarative base and the constraint naming convention every table shares.

A fixed naming convention makes constraint names identical on SQLite and PostgreSQL, so
migrations can drop or alter them by name and `db check` compares like with like.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.ids import new_id
from byteor_cloud.db.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LENGTH = 26


class Base(DeclarativeBase):
    """Base of every model; metadata is the single source for `db check`."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def id_column() -> Mapped[str]:
    """A ULID primary key, generated in Python so ids exist before flush."""
    return mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)


def owned_by(table: str) -> Mapped[str]:
    """A required reference to a row of `table` that goes when that row goes (ON DELETE
    CASCADE): how rows hang off their organization, project, environment or parent."""
    return mapped_column(ForeignKey(f"{table}.id", ondelete="CASCADE"), nullable=False)


def created_at_column() -> Mapped[datetime]:
    """Creation time in UTC, set in Python from the one clock."""
    return mapped_column(UTCDateTime(), nullable=False, default=utcnow)
