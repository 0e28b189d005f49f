"""tenants' admission overrides and cache scope; an index of each tenant's active jobs

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 12:00:00
"""

import secrets

import sqlalchemy as sa

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ACTIVE = sa.text("status IN ('queued', 'running')")


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_active_jobs", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("submissions_per_minute", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("chars_per_day", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("cache_scope", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("cache_salt", sa.String(length=32), nullable=True))
    # Each existing tenant its own random salt, as new tenants get one when they are created.
    tenants = sa.table("tenants", sa.column("id", sa.String), sa.column("cache_salt", sa.String))
    connection = op.get_bind()
    for (tenant_id,) in connection.execute(sa.select(tenants.c.id)).all():
        connection.execute(tenants.update().where(tenants.c.id == tenant_id).values(cache_salt=secrets.token_hex(16)))
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.alter_column("cache_salt", existing_type=sa.String(length=32), nullable=False)
    op.create_index("ix_jobs_active_tenant", "jobs", ["tenant_id"], postgresql_where=ACTIVE, sqlite_where=ACTIVE)


def downgrade() -> None:
    op.drop_index("ix_jobs_active_tenant", table_name="jobs", postgresql_where=ACTIVE, sqlite_where=ACTIVE)
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        for column in ("cache_salt", "cache_scope", "chars_per_day", "submissions_per_minute", "max_active_jobs"):
            batch_op.drop_column(column)
