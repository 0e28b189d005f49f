"""Servers of one test's own, to stop and start again at will: a Redis without persistence and a
PostgreSQL cluster, each on a free port of 127.0.0.1. The farm tier's shared servers stay up for
every other test (and for other test runs on the machine)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import redis

from bench.farm_env import S3Server
from voicefarm.ops.supervisor import free_port

ROOT = os.geteuid() == 0


def _until(what: str, ready, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up in {timeout} s")
        time.sleep(0.05)


class Redis:
    """redis-server with no persistence: a restart forgets every key, queued messages included."""

    def __init__(self, folder: Path) -> None:
        self.port, self.folder = free_port(), folder
        self.url = f"redis://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        command = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        with open(self.folder / "redis.log", "ab") as log:
            self.proc = subprocess.Popen([*command, "--dir", str(self.folder)], stdout=log, stderr=subprocess.STDOUT)
        _until("redis", redis.Redis.from_url(self.url, socket_connect_timeout=1).ping)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # as a crash: nothing is saved
            self.proc.wait(10)
            self.proc = None


class Postgres:
    """A PostgreSQL cluster of its own (Debian's binaries) in a folder of its own, run as the
    `postgres` user when the tests run as root, which PostgreSQL refuses; trusted on 127.0.0.1."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
        if not versions:
            raise RuntimeError("PostgreSQL's binaries are not installed (run tests/services.sh)")
        self.bin = versions[-1]
        # Not under the test's tmp_path: the postgres user cannot enter root's private folders.
        self.folder = Path(tempfile.mkdtemp(prefix="voicefarm-postgres-"))
        if ROOT:
            shutil.chown(self.folder, "postgres")
        self._run("initdb", "-D", str(self.folder / "data"), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, program: str, *args: str) -> None:
        as_postgres = ["runuser", "-u", "postgres", "--"] if ROOT else []
        subprocess.run([*as_postgres, str(self.bin / program), *args], check=True, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off"
        log = str(self.folder / "postgres.log")
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-o", options, "-l", log, "-w", "start")
        _until("postgresql", lambda: psycopg.connect(self.url, connect_timeout=1).close() or True)

    def stop(self) -> None:
        """As a crash would: the next start recovers from the write-ahead log."""
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class S3:
    """The S3 server (`rclone serve s3`), stopped and started again on the same port."""

    def __init__(self, folder: Path) -> None:
        self.server, self.folder = S3Server(key="chaos", bucket="chaos"), folder
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = self.server.start(self.folder, self.folder / "rclone.log")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None
