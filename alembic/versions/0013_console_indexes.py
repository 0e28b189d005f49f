"""indexes for the browser console: a tenant's latest jobs and batches, the last hour's attempts

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-20 10:00:00

GET /v1/jobs and GET /v1/batches read a tenant's newest rows, and GET /v1/rates the attempts
that finished in the last hour: each through an index, so they cost the same with any history.
Built CONCURRENTLY on PostgreSQL, as 0009's: a farm with years of jobs keeps taking submissions.
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_jobs_tenant_created": ("jobs", ["tenant_id", "created_at"]),
    "ix_batches_tenant_created": ("batches", ["tenant_id", "created_at"]),
    "ix_attempts_finished_at": ("attempts", ["finished_at"]),
}


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for name, (table, columns) in INDEXES.items():
            op.create_index(name, table, columns, postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name, (table, _) in INDEXES.items():
            op.drop_index(name, table_name=table, postgresql_concurrently=True)
