"""The `farm` fixture: an embedded farm of its own for each test that asks for one."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tests.unit.embedded import ENV, OTHER, TENANT
from voicefarm.dispatch.app import get_celery
from voicefarm.library.cache import get_cache
from voicefarm.settings import Settings, get_settings
from voicefarm.store import db
from voicefarm.store.models import Base, Tenant
from voicefarm.store.objects import get_store

# What the farm remembers per process, made from the settings on first use.
CACHED = (get_settings, db.sql_engine, db.session_factory, get_cache, get_store, get_celery)


def forget() -> None:
    if get_celery.cache_info().currsize:
        get_celery().close()
    if db.sql_engine.cache_info().currsize:
        db.sql_engine().dispose()
    for cached in CACHED:
        cached.cache_clear()


@pytest.fixture(scope="session")
def schema(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database with the farm's schema and its two tenants, made once: each farm starts
    from a copy (making the schema takes longer than most tests)."""
    path = tmp_path_factory.mktemp("schema") / "voicefarm.db"
    engine = db.make_sql_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add_all([Tenant(id=TENANT, name="A"), Tenant(id=OTHER, name="B")])
        s.commit()
    engine.dispose()  # the last connection checkpoints the WAL into the file
    return path


@pytest.fixture
def farm(schema: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings of an embedded farm in tmp_path (SQLite, a local object store, the filesystem
    broker), with a fresh database of its own; no worker is live until a test says so."""
    for name in [n for n in os.environ if n.startswith("VOICEFARM_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("VOICEFARM_DATA_DIR", str(tmp_path))
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    forget()
    settings = get_settings()
    assert settings.database_url == f"sqlite:///{tmp_path / 'voicefarm.db'}"
    shutil.copyfile(schema, tmp_path / "voicefarm.db")
    yield settings
    forget()
