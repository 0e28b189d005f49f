"""a partial index for /v1/engines: each engine's latest syntheses, whatever the history

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10 10:00:00

On PostgreSQL it is built CONCURRENTLY: a farm with years of jobs keeps taking submissions
while it builds. (Active jobs need no new index: /metrics finds them through ix_jobs_status.)
"""

import sqlalchemy as sa

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_jobs_synthesized": (["engine", "finished_at"], "leader_id IS NULL AND synthesis_seconds IS NOT NULL"),
}


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for name, (columns, where) in INDEXES.items():
            op.create_index(
                name,
                "jobs",
                columns,
                postgresql_where=sa.text(where),
                sqlite_where=sa.text(where),
                postgresql_concurrently=True,
            )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name in INDEXES:
            op.drop_index(name, table_name="jobs", postgresql_concurrently=True)
