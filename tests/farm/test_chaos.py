"""Chaos: about a hundred jobs on two Piper workers while workers are SIGKILLed, whole or one pool
process at a time, and Redis, PostgreSQL and the S3 server each stop for 5 s. No job fails, none
is lost or done twice, and every job is final within 90 s of the last fault.

This farm has servers of its own (tests/farm/servers.py), so its outages reach no other test.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from tests.farm.conftest import LOGS
from tests.farm.servers import S3, Postgres, Redis
from voicefarm.client import Client
from voicefarm.ops.supervisor import Farm, free_port
from voicefarm.settings import DEFAULT_TIERS, Settings

JOBS = 100
OUTAGE = 5.0  # seconds each server stays down
FINAL_WITHIN = 90.0  # seconds after the last fault


def wait_until(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (psycopg.Error, OSError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen in {timeout} s")
        time.sleep(0.1)


@dataclass
class ChaosFarm:
    """A farm on servers of its own: the API and the reconciler (farm), Piper workers started
    here one by one, and an API key."""

    farm: Farm
    redis: Redis
    postgres: Postgres
    s3: S3
    key: str
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def client(self) -> Client:
        # An agent's client: transient errors (the farm's 503s during an outage) are retried.
        return Client(self.farm.url, self.key, retries=8, backoff=0.25)

    def start_worker(self) -> None:
        """A Piper worker, as a process group of its own."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "voicefarm", "worker", "--engine", "piper", "--metrics-port", "0"],
            stdout=open(LOGS / f"chaos-worker-{len(self.workers) + 1}.log", "ab"),  # noqa: SIM115 (the worker writes to it)
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(proc)

    def live(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.workers if p.poll() is None]

    def beating(self) -> int:
        """Piper workers that beat in the last two seconds."""
        with psycopg.connect(self.postgres.url, connect_timeout=2) as conn:
            row = conn.execute(
                "SELECT count(*) FROM workers WHERE engine = 'piper' AND self_test IS NULL"
                " AND last_seen > (now() AT TIME ZONE 'utc') - interval '2 seconds'"
            ).fetchone()
        return int(row[0]) if row else 0

    def kill_worker(self) -> None:
        """SIGKILL a whole worker, pool and all, as the OOM killer or a lost host would; start
        another in its place."""
        victim = self.live()[0]
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        self.start_worker()

    def kill_pool_process(self) -> None:
        """SIGKILL one pool process of a worker that beats (one still starting runs its engine's
        self-test in a child); the worker lives on and forks another."""
        with psycopg.connect(self.postgres.url, connect_timeout=2) as conn:
            names = [name for (name,) in conn.execute("SELECT name FROM workers WHERE self_test IS NULL")]
        beating = {int(name.rsplit(":", 1)[1]) for name in names}
        for worker in [p for p in self.live() if p.pid in beating]:
            children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
            if children:
                os.kill(int(children[0]), signal.SIGKILL)
                return
        raise AssertionError("no worker has a pool process to kill")

    def outage(self, server: Redis | Postgres | S3) -> None:
        server.stop()
        time.sleep(OUTAGE)  # the fault itself: the server stays down this long
        server.start()


@pytest.fixture
def chaos(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ChaosFarm]:
    redis, postgres, s3 = Redis(tmp_path / "redis"), Postgres(), S3(tmp_path / "s3")
    # This process's environment, and so every process of the farm's, names these servers alone.
    env = {
        "VOICEFARM_DATA_DIR": str(tmp_path / "data"),
        "VOICEFARM_DATABASE_URL": postgres.url,
        "VOICEFARM_BROKER_URL": f"{redis.url}/0",
        "VOICEFARM_REDIS_URL": f"{redis.url}/1",
        **s3.server.settings(),
        "VOICEFARM_API_PORT": str(free_port()),
        "VOICEFARM_ENGINES": '["piper"]',
        "VOICEFARM_TIERS": json.dumps(DEFAULT_TIERS),
        "VOICEFARM_PLUGINS": "{}",
        "VOICEFARM_ENGINE_TIME_LIMITS": "{}",
        "VOICEFARM_HEARTBEAT_SECONDS": "1",
        "VOICEFARM_WORKER_DEAD_AFTER_SECONDS": "4",
        "VOICEFARM_RECONCILE_AFTER_SECONDS": "6",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    chaos = None
    try:
        for server in (redis, postgres, s3):
            server.start()
        subprocess.run(["voicefarm", "migrate"], check=True, capture_output=True)
        made = subprocess.run(["voicefarm", "keys", "create", "--tenant", "chaos"], check=True, capture_output=True)
        with Farm(Settings(), log_dir=LOGS / "chaos", workers=[]) as farm:
            chaos = ChaosFarm(farm, redis, postgres, s3, made.stdout.decode().strip())
            chaos.start_worker()
            chaos.start_worker()
            wait_until("two Piper workers beating", lambda: chaos.beating() == 2, timeout=120)
            yield chaos
    finally:
        for proc in chaos.workers if chaos else []:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for server in (redis, postgres, s3):
            server.stop()
        postgres.remove()


def utc(when: datetime | None) -> datetime:
    assert when is not None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def test_no_job_fails_is_lost_or_runs_twice_through_kills_and_outages(chaos: ChaosFarm) -> None:
    faults: list[tuple[float, str, Callable[[], None]]] = [
        (2, "SIGKILL of a pool process", chaos.kill_pool_process),
        (5, "SIGKILL of a whole worker", chaos.kill_worker),
        (9, "Redis stopped for 5 s, restarted empty", lambda: chaos.outage(chaos.redis)),
        (17, "SIGKILL of a pool process", chaos.kill_pool_process),
        (20, "PostgreSQL stopped for 5 s", lambda: chaos.outage(chaos.postgres)),
        (28, "SIGKILL of a pool process", chaos.kill_pool_process),
        (30, "S3 server stopped for 5 s", lambda: chaos.outage(chaos.s3)),
        (38, "SIGKILL of a whole worker", chaos.kill_worker),
    ]
    began = time.monotonic()

    def inject() -> datetime:
        for at, what, fault in faults:
            time.sleep(max(0.0, began + at - time.monotonic()))  # the schedule: faults at set times
            fault()
            print(f"{time.monotonic() - began:5.1f} s  {what}")
        return datetime.now(UTC)

    def submit(i: int) -> str:
        time.sleep(max(0.0, began + i * 0.3 - time.monotonic()))  # a job every 0.3 s, through every fault
        with chaos.client() as client:
            job = client.submit(f"Chaos job number {i}: the farm goes on whatever breaks.")
        assert job.id is not None
        return job.id

    with ThreadPoolExecutor(8) as pool:
        injected = pool.submit(inject)
        ids = list(pool.map(submit, range(JOBS)))
        last_fault = injected.result()

    deadline = time.monotonic() + FINAL_WITHIN - (datetime.now(UTC) - last_fault).total_seconds()
    jobs = {}
    with chaos.client() as client:
        for job_id in ids:
            while (job := client.get(job_id)).status not in ("succeeded", "failed"):
                assert time.monotonic() < deadline, f"job {job_id} not final {FINAL_WITHIN} s after the last fault"
                time.sleep(0.2)
            jobs[job_id] = job

    chaos.farm.check_alive()  # the API, the webhook sender, the aligner and the reconciler rode it all out
    failed = {i: j.error for i, j in jobs.items() if j.status != "succeeded"}
    assert not failed, f"{len(failed)} job(s) failed: {failed}"
    # An outage is no engine's failure: no attempt failed, and each job has one success.
    outcomes = {i: [(a.engine, a.outcome) for a in j.attempts] for i, j in jobs.items()}
    assert all(("piper", "failed") not in o for o in outcomes.values()), outcomes
    twice = {i: o for i, o in outcomes.items() if o.count(("piper", "succeeded")) != 1}
    assert not twice, f"jobs that did not succeed exactly once: {twice}"
    with psycopg.connect(chaos.postgres.url) as conn:
        kept = conn.execute("SELECT count(*), count(DISTINCT content_key) FROM renditions").fetchone()
    assert kept == (JOBS, JOBS), f"renditions (all, distinct) {kept}: some audio was made twice"

    latency = sorted((utc(j.timings.finished) - utc(j.timings.queued)).total_seconds() for j in jobs.values())
    to_final = max((utc(j.timings.finished) - last_fault).total_seconds() for j in jobs.values())
    lost = sum(o.count(("piper", "lost")) for o in outcomes.values())
    print(
        f"{JOBS} jobs, {len(faults)} faults, {lost} attempts lost to kills and sent again: latency p50 "
        f"{statistics.median(latency):.1f} s, p99 {latency[int(0.99 * (len(latency) - 1))]:.1f} s, max "
        f"{latency[-1]:.1f} s; every job final {max(to_final, 0):.1f} s after the last fault"
    )
    assert to_final <= FINAL_WITHIN
