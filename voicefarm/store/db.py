"""The database and its sessions (SQLAlchemy 2; psycopg 3 for PostgreSQL). SQLAlchemy's `Engine`
is called a sql_engine here: in this farm, an engine is a TTS engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Executable, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from voicefarm.settings import get_settings


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// URLs and use the psycopg 3 driver for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_sql_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        # API and worker processes share one SQLite file in the embedded farm: WAL lets
        # readers run beside the writer, and busy_timeout waits out the writer's lock.
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def upsert(s: Session, table: Any) -> Any:
    """An INSERT of the session's dialect that takes ON CONFLICT: PostgreSQL's, or SQLite's."""
    return (postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert)(table)


@lru_cache
def sql_engine() -> Engine:
    return make_sql_engine(get_settings().database_url)


@lru_cache
def session_factory() -> sessionmaker[Session]:
    return sessionmaker(sql_engine(), expire_on_commit=False)


@contextmanager
def session() -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with session_factory()() as s:
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise


def changed(s: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE in the session; how many rows it changed."""
    return cast(CursorResult[Any], s.execute(statement)).rowcount
