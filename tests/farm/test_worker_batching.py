"""A worker whose engine serves several jobs at once in one process (Capabilities.concurrency):
a threads pool feeds it, and every job keeps the guarantees it has alone. The `crowd` engine
(tests/fault_engines.py) runs its jobs only four at a time; the farm's own XTTS worker batches
its jobs this way too (VOICEFARM_XTTS_BATCH_SIZE in conftest), under every XTTS test."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.farm.conftest import more_workers, wait_final
from tests.farm.test_recovery import job_of, wait_for
from tests.fault_engines import CROWD
from voicefarm.fleet.heartbeat import owner

CROWDED = {"quality": "crowded"}  # crowd first, then Piper


@pytest.fixture
def crowd_worker() -> Iterator[int]:
    """One `crowd` worker; its main process's pid."""
    with more_workers("crowd", 1, 1) as [proc]:
        yield proc.pid


def submit_together(http: httpx.Client, texts: list[str]) -> list[str]:
    with ThreadPoolExecutor(len(texts)) as pool:
        return list(pool.map(lambda t: http.post("/v1/jobs", json={"text": t, **CROWDED}).json()["id"], texts))


def test_one_worker_runs_its_engines_jobs_at_once_each_in_its_own_thread(http: httpx.Client, crowd_worker: int) -> None:
    texts = [f"Job number {n} of a crowd, spoken at the same time as the others." for n in range(CROWD)]
    jobs = [wait_final(http, job_id) for job_id in submit_together(http, texts)]
    # crowd fails any job that it did not serve together with the rest.
    assert all(j["status"] == "succeeded" and j["engine"] == "crowd" for j in jobs), jobs
    workers = [j["attempts"][0]["worker"] for j in jobs]
    assert {owner(w) for w in workers} == {owner(workers[0])} and owner(workers[0]).endswith(f":{crowd_worker}")
    assert len({w.rsplit(".", 1)[1] for w in workers}) == CROWD, workers  # a thread each, in one process


@pytest.mark.fault_injection
def test_a_job_that_fails_among_others_moves_on_alone(http: httpx.Client, crowd_worker: int) -> None:
    texts = [f"Job number {n} carries on while another breaks." for n in range(CROWD - 1)]
    breaks, *others = submit_together(http, ["Break this one job, and only this one.", *texts])
    failed = wait_final(http, breaks)
    assert failed["status"] == "succeeded" and failed["engine"] == "piper", failed
    assert [(a["engine"], a["outcome"]) for a in failed["attempts"]] == [("crowd", "failed"), ("piper", "succeeded")]
    assert "this job broke after its first piece" in failed["attempts"][0]["error"]
    for job in map(lambda j: wait_final(http, j), others):
        assert job["status"] == "succeeded" and job["engine"] == "crowd" and len(job["attempts"]) == 1, job


@pytest.mark.fault_injection
def test_a_job_past_its_soft_time_limit_stops_alone_at_its_next_piece(http: httpx.Client, crowd_worker: int) -> None:
    texts = [f"Job number {n} ends in time, beside one that never would." for n in range(CROWD - 1)]
    drags, *others = submit_together(http, ["Drag this one out for ever.", *texts])
    for job in map(lambda j: wait_final(http, j), others):
        assert job["status"] == "succeeded" and job["engine"] == "crowd" and len(job["attempts"]) == 1, job
    dragged = wait_final(http, drags)  # the crowd's soft limit is 8 s (conftest)
    assert [(a["engine"], a["outcome"]) for a in dragged["attempts"]] == [("crowd", "failed"), ("piper", "succeeded")]
    assert "the run passed its soft time limit" in dragged["attempts"][0]["error"], dragged["attempts"][0]


@pytest.mark.fault_injection
def test_a_killed_worker_loses_none_of_the_jobs_it_ran_at_once(http: httpx.Client, crowd_worker: int) -> None:
    texts = [f"Slowly, job number {n} is spoken while its worker is killed." for n in range(CROWD)]
    ids = submit_together(http, texts)
    wait_for(f"all {CROWD} jobs to run", lambda: all(job_of(http, j)["status"] == "running" for j in ids))
    os.kill(crowd_worker, signal.SIGKILL)
    with more_workers("crowd", 1, 1):  # the reconciler sends the four again, to this one
        jobs = [wait_final(http, j, timeout=120) for j in ids]
    for job in jobs:
        assert [(a["engine"], a["outcome"]) for a in job["attempts"]] == [("crowd", "lost"), ("crowd", "succeeded")], (
            job
        )
        assert job["status"] == "succeeded"
