"""A worker that dies whole, and a tenant that floods the farm: the jobs of the dead worker run
again within seconds, and the flood does not hold up anyone else's jobs."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import httpx
import pytest
import redis
from sqlalchemy import delete, func, select

from tests.farm.conftest import ENV, LOGS, wait_final
from voicefarm.dispatch import brokers
from voicefarm.dispatch.names import engine_queue
from voicefarm.fleet.heartbeat import live_beats, live_workers, owner
from voicefarm.ops.supervisor import Farm
from voicefarm.settings import get_settings
from voicefarm.store import db
from voicefarm.store.models import Job, JobStatus, Rendition
from voicefarm.tenancy.auth import create_key

SLOW = {"quality": "sluggish"}  # the slow engine first (tests/fault_engines.py), then Piper


def job_of(http: httpx.Client, job_id: str) -> dict:
    return http.get(f"/v1/jobs/{job_id}").json()


def wait_for(what: str, check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def unacked(job_id: str) -> dict[bytes, tuple[dict, int]]:
    """The broker's delivered, unacknowledged messages of a job: delivery tag -> (message, its
    dispatch number)."""
    r = redis.Redis.from_url(ENV["VOICEFARM_BROKER_URL"])
    found = {}
    for tag, raw in r.hgetall(f"{ENV['VOICEFARM_REDIS_PREFIX']}:unacked").items():
        message = json.loads(raw)[0]
        if message["headers"]["id"] == job_id:
            args = json.loads(base64.b64decode(message["body"]))[0]
            found[tag] = (message, args[1])
    return found


@pytest.mark.fault_injection
def test_a_job_whose_worker_died_runs_again_within_seconds_and_once(
    http: httpx.Client, slow_workers: list[subprocess.Popen[bytes]]
) -> None:
    settings = get_settings()
    job_id = http.post("/v1/jobs", json={"text": "A worker will die while it says this.", **SLOW}).json()["id"]
    job = wait_for("the job to start", lambda: (j := job_of(http, job_id))["attempts"] and j)
    worker = owner(job["attempts"][0]["worker"])
    assert worker is not None, job["attempts"][0]
    # The worker's main process: its pool process dies with it (Celery sets PDEATHSIG), and its
    # message stays unacknowledged until the broker's visibility timeout, six minutes here.
    os.kill(int(worker.rsplit(":", 1)[1]), signal.SIGKILL)
    killed = time.time()

    job = wait_for("the job to run again", lambda: len((j := job_of(http, job_id))["attempts"]) > 1 and j)
    again = datetime.fromisoformat(job["attempts"][1]["started_at"]).timestamp() - killed
    bound = settings.worker_dead_after_seconds + settings.reconcile_after_seconds / 2  # the farm's reconcile period
    print(f"ran again {again:.1f} s after its worker was killed (bound {bound:.0f} s)")
    assert again <= bound + 5, f"ran again only after {again:.1f} s"
    assert job["attempts"][0]["outcome"] == "lost"
    assert f"the worker {worker} stopped beating" in job["attempts"][0]["error"]

    # What the broker does after its visibility timeout, done now: the dead worker's message
    # goes back on the queue while the job runs again. An idle worker takes it and must find
    # nothing to do.
    (stale,) = [(tag, message) for tag, (message, dispatch) in unacked(job_id).items() if dispatch == 0]
    r = redis.Redis.from_url(ENV["VOICEFARM_BROKER_URL"])
    prefix = ENV["VOICEFARM_REDIS_PREFIX"]
    r.hdel(f"{prefix}:unacked", stale[0])
    r.zrem(f"{prefix}:unacked_index", stale[0])
    r.lpush(f"{prefix}:{engine_queue('slow')}", json.dumps(stale[1]))

    job = wait_final(http, job_id)
    assert job["status"] == "succeeded", job
    assert [(a["engine"], a["outcome"]) for a in job["attempts"]] == [("slow", "lost"), ("slow", "succeeded")]
    wait_for("the stale message to be consumed", lambda: job_id not in brokers.for_settings(settings).message_ids())
    logs = "".join(p.read_text(errors="replace") for p in LOGS.glob("worker-slow-*.log"))
    assert f"job {job_id}: stale message 0 (the job is on dispatch 1)" in logs
    assert len(job_of(http, job_id)["attempts"]) == 2  # the stale copy began nothing
    with db.session() as s:
        assert s.scalar(select(func.count()).where(Rendition.content_key == job["content_key"])) == 1


@pytest.mark.fault_injection
def test_a_job_whose_pool_process_died_and_whose_message_never_came_back_runs_again(
    http: httpx.Client, slow_workers: list[subprocess.Popen[bytes]]
) -> None:
    """The worker lives on and beats, but its job is gone from it: its beats stop listing the
    job, and the reconciler sends it again."""
    settings = get_settings()
    job_id = http.post("/v1/jobs", json={"text": "My pool process dies, and my message with it.", **SLOW}).json()["id"]
    job = wait_for("the job to start", lambda: (j := job_of(http, job_id))["attempts"] and j)
    worker, pool_process = job["attempts"][0]["worker"].rsplit("/", 1)
    # What a broker that lost the message leaves: nothing to redeliver when the pool process dies.
    r = redis.Redis.from_url(ENV["VOICEFARM_BROKER_URL"])
    prefix = ENV["VOICEFARM_REDIS_PREFIX"]
    for tag in unacked(job_id):
        r.hdel(f"{prefix}:unacked", tag)
        r.zrem(f"{prefix}:unacked_index", tag)
    os.kill(int(pool_process), signal.SIGKILL)
    killed = time.time()

    job = wait_final(http, job_id)
    assert job["status"] == "succeeded", job
    assert [(a["engine"], a["outcome"]) for a in job["attempts"]] == [("slow", "lost"), ("slow", "succeeded")]
    assert job["attempts"][0]["error"] == f"the worker {worker} no longer holds the job"
    again = datetime.fromisoformat(job["attempts"][1]["started_at"]).timestamp() - killed
    bound = settings.heartbeat_seconds + settings.reconcile_after_seconds / 2  # a beat, then a reconcile pass
    print(f"ran again {again:.1f} s after its pool process was killed (bound {bound:.0f} s)")
    assert again <= bound + 5, f"ran again only after {again:.1f} s"
    with db.session() as s:
        assert worker in live_beats(s, settings)  # its worker lived on throughout


FLOOD = 300  # at one job a second per worker, minutes of work: first come, first served would show


def test_a_flooding_tenant_does_not_hold_up_another(
    farm: Farm, http: httpx.Client, slow_workers: list[subprocess.Popen[bytes]]
) -> None:
    with db.session() as s:
        flood_key, light_key = create_key(s, "flood-a", name="tests"), create_key(s, "light-b", name="tests")
        workers = live_workers(s, get_settings())["slow"]

    def submit(i: int) -> str:
        with httpx.Client(base_url=farm.url, headers={"X-API-Key": flood_key}, timeout=30) as client:
            r = client.post("/v1/jobs", json={"text": f"Flood job number {i} of tenant A.", **SLOW})
            assert r.status_code == 202, r.text
            return r.json()["id"]

    with ThreadPoolExecutor(4) as pool:
        flood = set(pool.map(submit, range(FLOOD)))
    try:
        with httpx.Client(base_url=farm.url, headers={"X-API-Key": light_key}, timeout=30) as light:
            said = light.post("/v1/jobs", json={"text": "Tenant B has one thing to say.", **SLOW}).json()
            job = wait_final(light, said["id"])
        assert job["status"] == "succeeded", job
        submitted, started = (datetime.fromisoformat(job["timings"][k]) for k in ("queued", "started"))
        with db.session() as s:
            ahead = s.scalar(
                select(func.count()).where(Job.id.in_(flood), Job.started_at > submitted, Job.started_at < started)
            )
            waiting = s.scalar(select(func.count()).where(Job.id.in_(flood), Job.status == JobStatus.queued.value))
        print(f"B waited {(started - submitted).total_seconds():.1f} s; {ahead} of A's jobs started first")
        # Each worker may have taken one of A's jobs already: at most one more job time each.
        assert ahead <= workers, f"{ahead} of A's jobs started before B's"
        assert waiting > FLOOD // 2, "the flood was still queued when B's job ran"
    finally:
        # Flush the flood: rows first (a message whose job is gone finds nothing to do), then the
        # slow engine's queue; the jobs in hand finish.
        with db.session() as s:
            s.execute(delete(Job).where(Job.id.in_(flood), Job.status == JobStatus.queued.value))
        r = redis.Redis.from_url(ENV["VOICEFARM_BROKER_URL"])
        for key in r.scan_iter(f"{ENV['VOICEFARM_REDIS_PREFIX']}:{engine_queue('slow')}*", _type="list"):
            r.delete(key)
