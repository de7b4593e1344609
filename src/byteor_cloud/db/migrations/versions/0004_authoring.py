"""Authoring: drafts, immutable versions and config bundles (guarded by triggers), and
the environment runtime fields of PRODUCT.md §8.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from byteor_cloud.db.types import PortableJSON, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drafts",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("org_id", sa.String(length=26), nullable=False),
        sa.Column("project_id", sa.String(length=26), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("plan", PortableJSON(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=26), nullable=True),
        sa.CheckConstraint(
            "target IN ('single_ring', 'lane_graph')", name=op.f("ck_drafts_target")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_drafts_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_drafts_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drafts")),
    )
    with op.batch_alter_table("drafts", schema=None) as batch_op:
        batch_op.create_index("ix_drafts_project_id_id", ["project_id", "id"], unique=False)

    op.create_table(
        "versions",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("org_id", sa.String(length=26), nullable=False),
        sa.Column("project_id", sa.String(length=26), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("spec_hash", sa.String(length=71), nullable=False),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("capabilities", PortableJSON(), nullable=False),
        sa.Column("compile_report", PortableJSON(), nullable=False),
        sa.Column("spec_kv", sa.Text(), nullable=False),
        sa.Column("source_draft_id", sa.String(length=26), nullable=True),
        sa.Column("source_revision", sa.Integer(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("labels", PortableJSON(), nullable=False),
        sa.Column("created_by", sa.String(length=26), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("ready_at", UTCDateTime(), nullable=True),
        sa.Column("spec_kv_key", sa.String(length=512), nullable=True),
        sa.Column("graph_svg_key", sa.String(length=512), nullable=True),
        sa.Column("diff_key", sa.String(length=512), nullable=True),
        sa.Column("ingest_error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('ingesting', 'ready', 'failed')", name=op.f("ck_versions_status")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_versions_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_versions_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_versions")),
        sa.UniqueConstraint("project_id", "number", name=op.f("uq_versions_project_id_number")),
        sa.UniqueConstraint(
            "project_id", "spec_hash", name=op.f("uq_versions_project_id_spec_hash")
        ),
    )
    op.create_table(
        "config_bundles",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("org_id", sa.String(length=26), nullable=False),
        sa.Column("project_id", sa.String(length=26), nullable=False),
        sa.Column("environment_id", sa.String(length=26), nullable=False),
        sa.Column("version_id", sa.String(length=26), nullable=False),
        sa.Column("runtime_config", PortableJSON(), nullable=False),
        sa.Column("secret_refs", PortableJSON(), nullable=False),
        sa.Column("bundle_hash", sa.String(length=71), nullable=False),
        sa.Column("created_by", sa.String(length=26), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_config_bundles_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_config_bundles_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_config_bundles_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["versions.id"],
            name=op.f("fk_config_bundles_version_id_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_config_bundles")),
    )
    with op.batch_alter_table("config_bundles", schema=None) as batch_op:
        batch_op.create_index(
            "ix_config_bundles_environment_id_id", ["environment_id", "id"], unique=False
        )

    with op.batch_alter_table("environments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("max_inflight_deployments", sa.Integer(), server_default="1", nullable=False)
        )
        batch_op.add_column(
            sa.Column("artifact_retention_days", sa.Integer(), server_default="30", nullable=False)
        )
        batch_op.add_column(
            sa.Column("heartbeat_interval_s", sa.Integer(), server_default="30", nullable=False)
        )

    _create_immutability_guards()


def downgrade() -> None:
    _drop_immutability_guards()
    with op.batch_alter_table("environments", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_interval_s")
        batch_op.drop_column("artifact_retention_days")
        batch_op.drop_column("max_inflight_deployments")

    with op.batch_alter_table("config_bundles", schema=None) as batch_op:
        batch_op.drop_index("ix_config_bundles_environment_id_id")

    op.drop_table("config_bundles")
    op.drop_table("versions")
    with op.batch_alter_table("drafts", schema=None) as batch_op:
        batch_op.drop_index("ix_drafts_project_id_id")

    op.drop_table("drafts")


def _guard_sql(dialect: str, table: str, columns: tuple[str, ...]) -> list[str]:
    # Immutable records: no code path may change these columns, and the database refuses
    # it too (a bug or a hand-written UPDATE cannot silently rewrite a hashed record).
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OF {', '.join(columns)} "
            f"ON {table} BEGIN SELECT RAISE(ABORT, '{table} are immutable'); END"
        ]
    changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in columns)
    return [
        f"CREATE FUNCTION {table}_immutable() RETURNS trigger AS $$ BEGIN "
        f"IF {changed} THEN RAISE EXCEPTION '{table} are immutable'; END IF; "
        f"RETURN NEW; END $$ LANGUAGE plpgsql",
        f"CREATE TRIGGER {table}_immutable BEFORE UPDATE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {table}_immutable()",
    ]


# A frozen copy of the model's lists (a migration must not change when models do).
VERSION_IMMUTABLE_COLUMNS = (
    "org_id",
    "project_id",
    "number",
    "spec_hash",
    "target",
    "capabilities",
    "compile_report",
    "spec_kv",
    "source_draft_id",
    "source_revision",
    "created_by",
    "created_at",
    "description",
    "labels",
    "name",
)
BUNDLE_IMMUTABLE_COLUMNS = (
    "org_id",
    "project_id",
    "environment_id",
    "version_id",
    "runtime_config",
    "secret_refs",
    "bundle_hash",
    "created_by",
    "created_at",
)
GUARDED = (("versions", VERSION_IMMUTABLE_COLUMNS), ("config_bundles", BUNDLE_IMMUTABLE_COLUMNS))


def _create_immutability_guards() -> None:
    dialect = op.get_bind().dialect.name
    for table, columns in GUARDED:
        for statement in _guard_sql(dialect, table, columns):
            op.execute(statement)


def _drop_immutability_guards() -> None:
    dialect = op.get_bind().dialect.name
    for table, _ in GUARDED:
        op.execute(
            f"DROP TRIGGER IF EXISTS {table}_immutable"
            + ("" if dialect == "sqlite" else f" ON {table}")
        )
        if dialect != "sqlite":
            op.execute(f"DROP FUNCTION IF EXISTS {table}_immutable()")
