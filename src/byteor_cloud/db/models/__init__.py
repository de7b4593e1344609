"""Every table's model, imported here so `metadata` is complete for Alembic and db check."""

from byteor_cloud.db.base import Base
from byteor_cloud.db.models.jobs import Job, PeriodicSchedule

metadata = Base.metadata

__all__ = ["Base", "Job", "PeriodicSchedule", "metadata"]
