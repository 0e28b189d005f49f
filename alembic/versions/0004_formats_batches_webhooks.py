"""formats batches webhooks

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 05:45:49.252453
"""

import sqlalchemy as sa

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("callback_url", sa.String(length=2000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_batches_tenant_id"), ["tenant_id"], unique=False)

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("output_rate", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("batch_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("batch_index", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("callback_url", sa.String(length=2000), nullable=True))
        batch_op.create_index(batch_op.f("ix_jobs_batch_id"), ["batch_id"], unique=False)
        batch_op.create_foreign_key("fk_jobs_batch_id", "batches", ["batch_id"], ["id"], ondelete="CASCADE")

    with op.batch_alter_table("renditions", schema=None) as batch_op:
        # Renditions from before masters existed have none to convert from: an empty source key.
        batch_op.add_column(sa.Column("source_key", sa.String(length=64), nullable=False, server_default=""))
        batch_op.create_index(batch_op.f("ix_renditions_source_key"), ["source_key"], unique=False)

    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("webhook_secret", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("webhook_secret")

    with op.batch_alter_table("renditions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_renditions_source_key"))
        batch_op.drop_column("source_key")

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        # WARNING: constraint name is None; this directive will fail as
        # rendered.  Add a name, or use a naming convention; see
        # https://alembic.sqlalchemy.org/en/latest/naming.html
        batch_op.drop_constraint("fk_jobs_batch_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_jobs_batch_id"))
        batch_op.drop_column("callback_url")
        batch_op.drop_column("batch_index")
        batch_op.drop_column("batch_id")
        batch_op.drop_column("output_rate")

    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_batches_tenant_id"))

    op.drop_table("batches")
