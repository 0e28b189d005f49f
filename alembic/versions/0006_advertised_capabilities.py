"""workers advertise their engines' capabilities; each engine's last known ones

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 10:00:00
"""

import sqlalchemy as sa

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("capabilities", sa.JSON(), nullable=True))
    op.create_table(
        "engine_capabilities",
        sa.Column("engine", sa.String(length=32), nullable=False),
        sa.Column("capabilities", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("engine"),
    )


def downgrade() -> None:
    op.drop_table("engine_capabilities")
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_column("capabilities")
