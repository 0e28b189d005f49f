"""A farm that loses nothing: failures move jobs down their chain, dead workers' jobs come back,
a broker that forgets is reconciled, a database outage refuses cleanly."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time

import httpx
import pytest
import redis
from sqlalchemy import func, select

from tests.farm.conftest import ENV, REDIS, free_port, wait_final
from voicefarm.settings import get_settings
from voicefarm.store import db
from voicefarm.store.models import Job, Rendition
from voicefarm.store.objects import open_store


def outcomes(job: dict) -> list[tuple[str, str]]:
    return [(a["engine"], a["outcome"]) for a in job["attempts"]]


@pytest.mark.fault_injection
@pytest.mark.parametrize(
    ("tier", "engine", "error"),
    [
        ("flaky", "broken", "RuntimeError: this engine always fails"),
        ("slow", "hangs", "SoftTimeLimitExceeded"),
        ("stuck", "stuck", "TimeLimitExceeded"),
        ("quiet", "silent", "AudioRejected: silence"),
    ],
)
def test_a_failing_engine_hands_the_job_to_the_next(http: httpx.Client, tier: str, engine: str, error: str) -> None:
    submitted = http.post("/v1/jobs", json={"text": f"Whatever happens on {tier}, this gets said.", "quality": tier})
    assert submitted.status_code == 202, submitted.text
    job = wait_final(http, submitted.json()["id"], timeout=60)
    assert job["id"] == submitted.json()["id"]  # one job id throughout
    assert job["status"] == "succeeded" and job["engine"] == "piper", (job["error"], job["attempts"])
    assert outcomes(job) == [(engine, "failed"), ("piper", "succeeded")]
    assert error in job["attempts"][0]["error"] and job["attempts"][0]["worker"]
    with db.session() as s:
        assert s.get(Job, job["id"]).attempts[0].rerouted_to == "piper"


def test_an_engine_without_a_live_worker_is_skipped(http: httpx.Client) -> None:
    job = wait_final(
        http, http.post("/v1/jobs", json={"text": "Nobody runs the ghost.", "quality": "nolive"}).json()["id"]
    )
    assert job["status"] == "succeeded" and outcomes(job) == [("piper", "succeeded")]


@pytest.mark.fault_injection
def test_when_every_engine_fails_the_job_fails_with_every_error(http: httpx.Client) -> None:
    job = wait_final(http, http.post("/v1/jobs", json={"text": "Doomed.", "quality": "hopeless"}).json()["id"])
    assert job["status"] == "failed" and outcomes(job) == [("broken", "failed")]
    assert job["error"].startswith("every engine failed: broken: RuntimeError")


def test_idempotency_key_returns_the_first_job(http: httpx.Client) -> None:
    body = {"text": "Say this once, however often I ask."}
    headers = {"Idempotency-Key": f"order-{time.time_ns()}"}
    first = http.post("/v1/jobs", json=body, headers=headers)
    again = http.post("/v1/jobs", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    done = wait_final(http, first.json()["id"])
    assert http.post("/v1/jobs", json=body, headers=headers).json()["id"] == done["id"]
    with db.session() as s:
        assert s.scalar(select(func.count(Job.id)).where(Job.idempotency_key == headers["Idempotency-Key"])) == 1


LONG_TEXT = " ".join(["The farm keeps working while a worker process is killed in the middle of a sentence."] * 14)


@pytest.mark.fault_injection
def test_a_worker_killed_mid_synthesis_loses_nothing_and_does_nothing_twice(http: httpx.Client) -> None:
    job_id = http.post("/v1/jobs", json={"text": LONG_TEXT}).json()["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = http.get(f"/v1/jobs/{job_id}").json()
        if job["status"] == "running" and job["attempts"]:
            break
        time.sleep(0.05)
    pid = int(job["attempts"][0]["worker"].rsplit("/", 1)[1])  # the pool process, not the worker
    time.sleep(0.5)  # well inside the synthesis
    os.kill(pid, signal.SIGKILL)

    job = wait_final(http, job_id, timeout=120)
    assert job["status"] == "succeeded", job
    assert outcomes(job) == [("piper", "lost"), ("piper", "succeeded")]
    assert "worker died" in job["attempts"][0]["error"]
    with db.session() as s:
        assert (
            s.scalar(select(func.count()).select_from(Rendition).where(Rendition.content_key == job["content_key"]))
            == 1
        )
    store = open_store(get_settings())
    assert store.exists(f"audio/{job['content_key']}.wav")


def dispatches(ids: list[str]) -> dict[str, int]:
    """Each job's dispatch number: how many times it was sent again."""
    with db.session() as s:
        return {job_id: dispatch for job_id, dispatch in s.execute(select(Job.id, Job.dispatch).where(Job.id.in_(ids)))}


def control(command: str, engine: str) -> None:
    """Tell the engine's workers (only them) to stop or resume consuming its queue."""
    from voicefarm.dispatch.app import get_celery

    nodes = [name for reply in get_celery().control.ping(timeout=2) for name in reply if name.startswith(f"{engine}.")]
    assert nodes, f"no {engine} worker answered a ping"
    replies = getattr(get_celery().control, command)(f"tts.{engine}", destination=nodes, reply=True, timeout=5)
    assert replies, f"no worker answered {command}"


@pytest.mark.fault_injection
def test_redis_restart_with_jobs_queued_loses_none(http: httpx.Client, farm) -> None:
    from voicefarm.dispatch.brokers import for_settings

    control("cancel_consumer", "piper")  # park the jobs in Redis
    try:
        ids = [
            http.post("/v1/jobs", json={"text": f"Queued through a Redis restart, number {i}."}).json()["id"]
            for i in range(5)
        ]
        assert set(ids) <= for_settings(get_settings()).message_ids()

        r = redis.Redis.from_url(REDIS)
        with contextlib.suppress(redis.ConnectionError):  # the server hangs up as it goes
            r.shutdown(nosave=True)
        subprocess.run(
            [
                "redis-server",
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "--port",
                "6379",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                "/tmp",
                "--logfile",
                "/tmp/voicefarm-redis.log",
            ],
            check=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if r.ping():
                    break
            except redis.ConnectionError:
                time.sleep(0.2)
        assert not set(ids) & for_settings(get_settings()).message_ids()  # the broker forgot them

        after = http.post("/v1/jobs", json={"text": "Submitted after the restart."})
        assert after.status_code == 202, after.text
        survivor = after.json()["id"]
        # The farm's reconciler finds the broker emptied and sends each lost job again within one
        # reconcile period, young as they are; not the one whose message exists.
        period = get_settings().reconcile_after_seconds / 2
        deadline = time.monotonic() + period + 10  # a pass, its settle second and its own time
        while any(dispatches([*ids, survivor])[i] == 0 for i in ids):
            assert time.monotonic() < deadline, f"not sent again within a reconcile period: {dispatches(ids)}"
            time.sleep(0.2)
        assert dispatches([*ids, survivor]) == {**dict.fromkeys(ids, 1), survivor: 0}
        assert set(ids) <= for_settings(get_settings()).message_ids()
    finally:
        deadline = time.monotonic() + 30
        while True:  # the worker reconnects to Redis on its own; then it takes the queue back
            try:
                control("add_consumer", "piper")
                break
            except Exception:  # no reply yet, or this process's own broker connection is stale
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
    for job_id in [*ids, survivor]:
        job = wait_final(http, job_id, timeout=90)
        assert job["status"] == "succeeded" and outcomes(job) == [("piper", "succeeded")], job
    assert dispatches([*ids, survivor]) == {**dict.fromkeys(ids, 1), survivor: 0}  # sent again once


@pytest.mark.fault_injection
def test_database_down_gives_503_and_keeps_nothing(api_key: str) -> None:
    port = free_port()
    dead = free_port()
    env = {
        **os.environ,
        "VOICEFARM_API_PORT": str(port),
        "VOICEFARM_DATABASE_URL": f"postgresql://postgres:postgres@127.0.0.1:{dead}/nothing",
    }
    api = subprocess.Popen(["voicefarm", "api"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"{url}/healthz")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert health.status_code == 503 and not health.json()["checks"]["database"]["ok"]
        assert health.json()["checks"]["broker"]["ok"]
        queue = redis.Redis.from_url(ENV["VOICEFARM_BROKER_URL"])
        before = queue.llen(f"{ENV['VOICEFARM_REDIS_PREFIX']}:tts.piper")
        r = httpx.post(f"{url}/v1/jobs", json={"text": "Is anyone there?"}, headers={"X-API-Key": api_key})
        assert r.status_code == 503 and r.json()["error"].startswith("database unavailable")
        assert queue.llen(f"{ENV['VOICEFARM_REDIS_PREFIX']}:tts.piper") == before
    finally:
        api.terminate()
        api.wait(10)


def test_hundreds_of_jobs_from_several_threads_all_finish(http: httpx.Client, api_key: str) -> None:
    results: list[str] = []
    lock = threading.Lock()

    def submit(worker: int) -> None:
        with httpx.Client(base_url=str(http.base_url), headers={"X-API-Key": api_key}, timeout=30) as c:
            for i in range(50):
                # a third of them repeat another thread's text: shared or cached, never lost
                text = f"Load item {i % 17 if i % 3 == 0 else worker * 100 + i}."
                r = c.post("/v1/jobs", json={"text": text})
                assert r.status_code in (200, 202), r.text
                with lock:
                    results.append(r.json()["id"] or "cache-hit")

    threads = [threading.Thread(target=submit, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 300
    for job_id in {r for r in results if r != "cache-hit"}:
        assert wait_final(http, job_id, timeout=300)["status"] == "succeeded"


def google_voice(http: httpx.Client) -> str:
    return next(v["id"] for v in http.get("/v1/voices").json() if v["engine"] == "google" and v["language"] == "en-US")


def test_google_speaks_through_the_farm(http: httpx.Client, google) -> None:
    voice = google_voice(http)
    job = wait_final(
        http,
        http.post(
            "/v1/jobs", json={"text": "Hello from the cloud.", "voice": voice, "quality": "cloudy", "speed": 1.2}
        ).json()["id"],
    )
    assert job["status"] == "succeeded" and outcomes(job) == [("google", "succeeded")], job["attempts"]
    sent = google.requests[-1]["body"]
    assert sent["input"]["text"] == "Hello from the cloud." and sent["audioConfig"]["speakingRate"] == 1.2


@pytest.mark.fault_injection
@pytest.mark.parametrize(("mode", "error"), [("400", "400"), ("503", "503"), ("hang", "timed out")])
def test_google_failures_fall_back_to_the_next_engine(http: httpx.Client, google, mode: str, error: str) -> None:
    google.mode = mode
    job = wait_final(
        http,
        http.post(
            "/v1/jobs", json={"text": f"Cloud trouble {mode}.", "voice": google_voice(http), "quality": "cloudy"}
        ).json()["id"],
        timeout=60,
    )
    assert job["status"] == "succeeded", (job["error"], job["attempts"])
    assert outcomes(job) == [("google", "failed"), ("piper", "succeeded")]
    assert error in job["attempts"][0]["error"].lower() or error in job["attempts"][0]["error"]
    assert job["spoken_voice"] == "en_US-joe-medium"  # Piper stands in with its own voice
