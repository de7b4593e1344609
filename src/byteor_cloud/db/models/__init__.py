"""Every table's model, imported here so `metadata` is complete for Alembic and db check."""

from byteor_cloud.db.base import Base

metadata = Base.metadata

__all__ = ["Base", "metadata"]
