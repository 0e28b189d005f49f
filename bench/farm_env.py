"""A throwaway production-shaped farm for benchmarks: Redis broker and cache, PostgreSQL, local store."""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import redis

PG_ADMIN = os.environ.get("VOICEFARM_TEST_POSTGRES", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("VOICEFARM_TEST_REDIS", "redis://127.0.0.1:6379")


@contextmanager
def bench_environment() -> Iterator[dict[str, str]]:
    """Set VOICEFARM_* for a fresh database, flushed Redis databases and an empty store; undo after."""
    run = secrets.token_hex(4)
    tmp = Path(tempfile.mkdtemp(prefix=f"voicefarm-bench-{run}-"))
    database = f"voicefarm_bench_{run}"
    env = {
        "VOICEFARM_DATA_DIR": str(tmp),
        "VOICEFARM_DATABASE_URL": f"{PG_ADMIN.rsplit('/', 1)[0]}/{database}",
        "VOICEFARM_BROKER_URL": f"{REDIS}/12",
        "VOICEFARM_REDIS_URL": f"{REDIS}/13",
        "VOICEFARM_STORAGE_URL": (tmp / "objects").as_uri(),
        "VOICEFARM_REDIS_PREFIX": f"vfbench-{run}",
    }
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        subprocess.run(["voicefarm", "migrate"], check=True, capture_output=True)
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        for n in (12, 13):
            r = redis.Redis.from_url(f"{REDIS}/{n}")
            for key in r.scan_iter(f"vfbench-{run}*"):
                r.delete(key)
