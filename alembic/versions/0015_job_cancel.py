"""when a job's owner canceled it

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08 01:00:00

A canceled job's status is `canceled` (a plain string: no constraint to change). A job that others
follow keeps its synthesis going for them after its owner cancels it: the column says it was
canceled while its status still says where that synthesis stands.
"""

import sqlalchemy as sa

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("canceled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("canceled_at")
