"""the jobs each worker holds, as its heartbeat says

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 15:00:00

A worker that lives on while a job it took is gone from it (its pool process was killed and the
message never came back, or the run gave up during an outage) leaves an attempt open for good:
with the jobs each worker holds in its heartbeat, the reconciler finds such attempts and sends
their jobs again.
"""

import sqlalchemy as sa

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("workers", sa.Column("jobs", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("jobs")
