"""Alembic environment: always driven in-process by `byteor_cloud.db.migrate`.

The caller hands over an open synchronous connection (already on the configured
PostgreSQL schema through search_path), so there is no alembic.ini and no URL here.
"""

from __future__ import annotations

from alembic import context

from byteor_cloud.db.models import metadata

config = context.config
connection = config.attributes["connection"]

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things in place; batch mode rebuilds tables portably.
    render_as_batch=True,
    compare_type=True,
    compare_server_default=True,
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
