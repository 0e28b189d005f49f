"""retention: renditions' last use, tombstones of what expired, indexes the collector reads

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 12:00:00
"""

from datetime import UTC, datetime

import sqlalchemy as sa

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tombstones",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("id", sa.String(length=300), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=True),
        sa.Column("expired_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("kind", "id"),
    )
    op.create_index("ix_tombstones_expired_at", "tombstones", ["expired_at"])
    with op.batch_alter_table("renditions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    # Audio stored before uses were tracked counts as used now: it gets a whole retention period
    # from the upgrade, rather than going at the first collection.
    renditions = sa.table("renditions", sa.column("last_used_at", sa.DateTime(timezone=True)))
    op.execute(renditions.update().values(last_used_at=datetime.now(UTC)))
    with op.batch_alter_table("renditions", schema=None) as batch_op:
        batch_op.alter_column("last_used_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.create_index("ix_renditions_last_used_at", ["last_used_at"])
    op.create_index("ix_jobs_finished_at", "jobs", ["finished_at"])
    op.create_index("ix_jobs_object_key", "jobs", ["object_key"])


def downgrade() -> None:
    op.drop_index("ix_jobs_object_key", table_name="jobs")
    op.drop_index("ix_jobs_finished_at", table_name="jobs")
    with op.batch_alter_table("renditions", schema=None) as batch_op:
        batch_op.drop_index("ix_renditions_last_used_at")
        batch_op.drop_column("last_used_at")
    op.drop_index("ix_tombstones_expired_at", table_name="tombstones")
    op.drop_table("tombstones")
