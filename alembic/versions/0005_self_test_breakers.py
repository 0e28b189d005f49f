"""self-test results and circuit breakers

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 03:10:00
"""

import sqlalchemy as sa

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("self_test", sa.Text(), nullable=True))
    op.create_table(
        "breakers",
        sa.Column("engine", sa.String(length=32), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("engine"),
    )


def downgrade() -> None:
    op.drop_table("breakers")
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_column("self_test")
