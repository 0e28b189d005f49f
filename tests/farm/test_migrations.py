"""The alembic migration creates the schema the models describe, on PostgreSQL and SQLite."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, inspect

from voicefarm.store import db
from voicefarm.store.models import Base


def tables_and_columns(engine) -> dict[str, set[str]]:
    insp = inspect(engine)
    return {t: {c["name"] for c in insp.get_columns(t)} for t in insp.get_table_names() if t != "alembic_version"}


def expected() -> dict[str, set[str]]:
    return {t.name: {c.name for c in t.columns} for t in Base.metadata.sorted_tables}


def test_postgres_schema_matches_models() -> None:
    assert tables_and_columns(db.sql_engine()) == expected()
    indexes = {i["name"]: i for i in inspect(db.sql_engine()).get_indexes("jobs")}
    assert indexes["uq_jobs_inflight_key"]["unique"]


def test_sqlite_upgrade_and_downgrade(tmp_path: Path) -> None:
    env = {**os.environ, "VOICEFARM_DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}"}
    subprocess.run(["voicefarm", "migrate"], env=env, check=True, capture_output=True)
    engine = create_engine(env["VOICEFARM_DATABASE_URL"])
    assert tables_and_columns(engine) == expected()
    subprocess.run(
        ["alembic", "downgrade", "base"], env=env, check=True, capture_output=True, cwd=Path(__file__).parents[2]
    )
    assert tables_and_columns(engine) == {}


def test_models_and_migrations_agree() -> None:
    done = subprocess.run(["alembic", "check"], capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stdout + done.stderr
