"""The counts of the work come from the processes doing it: each worker's main process serves
its own and its pool children's, a killed child's counts stay, the `lost` errback and the
reconciler count what they record, and `voicefarm up` says where each endpoint is."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, update

from tests.farm.conftest import Embedded, scrape, wait_final
from voicefarm.store import db
from voicefarm.store.models import Attempt, Job, utcnow

SUCCEEDED = ("voicefarm_attempts_total", (("engine", "piper"), ("outcome", "succeeded")))


def series(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


def piper_pid(job: dict) -> int:
    """The pool child that ran the job's successful attempt (workers are named
    <engine>@<host>:<main pid>/<pool pid>)."""
    (attempt,) = [a for a in job["attempts"] if a["outcome"] == "succeeded"]
    return int(attempt["worker"].rsplit("/", 1)[1])


def test_a_workers_metrics_count_its_jobs(http: httpx.Client, farm) -> None:
    piper = farm.metrics["piper"]
    before = scrape(piper)
    text = "The worker counts this sentence, and the time it took."
    job = wait_final(http, http.post("/v1/jobs", json={"text": text}).json()["id"])
    assert job["status"] == "succeeded" and job["engine"] == "piper"
    after = scrape(piper)

    def grew(key: tuple[str, tuple[tuple[str, str], ...]]) -> float:
        return after[key] - before.get(key, 0.0)

    assert grew(SUCCEEDED) >= 1
    assert grew(series("voicefarm_jobs_finished_total", engine="piper", state="succeeded")) >= 1
    assert grew(series("voicefarm_synthesis_seconds_count", engine="piper")) >= 1
    assert grew(series("voicefarm_synthesis_seconds_sum", engine="piper")) >= job["synthesis_seconds"] * 0.999
    assert grew(series("voicefarm_real_time_factor_count", engine="piper")) >= 1
    assert grew(series("voicefarm_job_latency_seconds_count", engine="piper")) >= 1
    assert grew(series("voicefarm_tts_characters_total", engine="piper", tenant="tenant-a")) >= len(text)
    # A histogram's buckets are cumulative and end in its count.
    buckets = sorted(
        (float(dict(labels)["le"]), v)
        for (name, labels), v in after.items()
        if name == "voicefarm_synthesis_seconds_bucket" and dict(labels)["engine"] == "piper"
    )
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)
    assert buckets[-1] == (float("inf"), after[series("voicefarm_synthesis_seconds_count", engine="piper")])
    # Another worker counted none of it.
    assert series("voicefarm_attempts_total", engine="piper", outcome="succeeded") not in scrape(farm.metrics["xtts"])


def test_a_killed_pool_child_keeps_the_counts_it_reported(http: httpx.Client, farm) -> None:
    piper = farm.metrics["piper"]
    before = scrape(piper).get(SUCCEEDED, 0.0)
    first = wait_final(http, http.post("/v1/jobs", json={"text": "Counted before the child dies."}).json()["id"])
    deadline = time.monotonic() + 30
    while (counted := scrape(piper).get(SUCCEEDED, 0.0)) < before + 1:  # the child tells its main process
        assert time.monotonic() < deadline, "the pool child's success was never counted"
        time.sleep(0.05)
    child = piper_pid(first)
    os.kill(child, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{child}").exists():  # until its main process has reaped it
        assert time.monotonic() < deadline, f"pool child {child} was not reaped"
        time.sleep(0.1)
    assert scrape(piper)[SUCCEEDED] >= counted  # what it reported outlived it

    second = wait_final(http, http.post("/v1/jobs", json={"text": "Counted by its replacement."}).json()["id"])
    assert second["status"] == "succeeded" and piper_pid(second) != child
    assert scrape(piper)[SUCCEEDED] >= counted + 1


@pytest.mark.fault_injection
def test_the_lost_errback_counts_in_the_workers_main_process(http: httpx.Client, farm) -> None:
    stuck = farm.metrics["stuck"]
    failed = series("voicefarm_attempts_total", engine="stuck", outcome="failed")
    moved = series("voicefarm_fallbacks_total", from_engine="stuck", to_engine="piper")
    before = scrape(stuck)
    job = wait_final(
        http, http.post("/v1/jobs", json={"text": "Past the hard limit.", "quality": "stuck"}).json()["id"]
    )
    assert job["status"] == "succeeded" and job["engine"] == "piper", job
    first = job["attempts"][0]
    assert (first["engine"], first["outcome"]) == ("stuck", "failed"), job["attempts"]
    assert "TimeLimitExceeded" in first["error"], first  # the errback recorded it: the task never returned
    after = scrape(stuck)
    assert after.get(failed, 0) - before.get(failed, 0) >= 1, (before.get(failed), after.get(failed))
    assert after.get(moved, 0) - before.get(moved, 0) >= 1, (before.get(moved), after.get(moved))


def test_the_reconciler_counts_the_jobs_it_resends(http: httpx.Client, farm) -> None:
    job = wait_final(http, http.post("/v1/jobs", json={"text": "Lost by the broker, found again."}).json()["id"])
    resent = series("voicefarm_reconciled_jobs_total", engine="piper")
    before = scrape(farm.metrics["reconciler"])[resent]
    # What a broker that forgot a message leaves: a job queued in the database, nothing queued in
    # the broker, older than the reconciler waits for.
    with db.session() as s:
        s.execute(delete(Attempt).where(Attempt.job_id == job["id"]))
        s.execute(
            update(Job)
            .where(Job.id == job["id"])
            .values(status="queued", started_at=None, finished_at=None, created_at=utcnow() - timedelta(minutes=5))
        )
    again = wait_final(http, job["id"], timeout=120)
    assert again["status"] == "succeeded" and len(again["attempts"]) == 1
    assert scrape(farm.metrics["reconciler"])[resent] == before + 1


def test_voicefarm_up_says_where_each_workers_metrics_are(embedded: Embedded) -> None:
    assert set(embedded.metrics) == {"piper", "reconciler"}, embedded.metrics
    before = scrape(embedded.metrics["piper"]).get(SUCCEEDED, 0.0)
    with httpx.Client(base_url=embedded.url, headers={"X-API-Key": embedded.key}, timeout=30) as http:
        job = wait_final(http, http.post("/v1/jobs", json={"text": "Embedded, and counted."}).json()["id"])
    assert job["status"] == "succeeded"
    assert scrape(embedded.metrics["piper"])[SUCCEEDED] == before + 1
    assert scrape(embedded.metrics["reconciler"])[series("voicefarm_reconciled_jobs_total", engine="piper")] == 0
