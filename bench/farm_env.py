"""A throwaway production-shaped farm for benchmarks: Redis broker and cache, PostgreSQL, local store."""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import redis

from voicefarm.farm import free_port

PG_ADMIN = os.environ.get("VOICEFARM_TEST_POSTGRES", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("VOICEFARM_TEST_REDIS", "redis://127.0.0.1:6379")


def forget_settings() -> None:
    """Make this process read its settings, and open its database, afresh: each benchmark step
    has an environment of its own."""
    from voicefarm import db
    from voicefarm.settings import get_settings

    db.engine().dispose()
    for cached in (get_settings, db.engine, db.session_factory):
        cached.cache_clear()


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
        "VOICEFARM_API_PORT": str(free_port()),  # benchmarks of other checkouts may run beside this one
    }
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    forget_settings()
    try:
        subprocess.run(["voicefarm", "migrate"], check=True, capture_output=True)
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        forget_settings()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        for n in (12, 13):
            r = redis.Redis.from_url(f"{REDIS}/{n}")
            for key in r.scan_iter(f"vfbench-{run}*"):
                r.delete(key)


def wait(http: httpx.Client, job_id: str, every: float = 0.25) -> dict:
    """The job once it has succeeded, polled gently: the API shares the CPU with the workers
    being measured. RuntimeError with its error if it failed."""
    while True:
        job = http.get(f"/v1/jobs/{job_id}").json()
        if job["status"] == "succeeded":
            return job
        if job["status"] == "failed":
            raise RuntimeError(job["error"])
        time.sleep(every)
