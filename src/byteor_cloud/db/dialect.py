"""Dialect-specific statement builders the portable code needs (one place, both databases)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert_for(session: AsyncSession) -> Any:
    """`insert` of the session's dialect, for `ON CONFLICT DO NOTHING` on both databases."""
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert
