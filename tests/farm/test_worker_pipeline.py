"""A pipelined worker (`voicefarm worker --pipeline`, voicefarm.worker.slots): its engine synthesizes
the next job while the last one is stored and recorded, never two at once, and each job still
runs once. Each test pipelines a worker of a spare engine that no other worker serves."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import httpx
import pytest

from tests.farm.conftest import more_workers, wait_final


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_the_next_synthesis_starts_while_the_last_job_is_stored(http: httpx.Client) -> None:
    texts = [f"Pipelined phrase {n}: the engine never waits for the store." for n in range(1, 7)]
    with more_workers("timed", 1, 1, "--pipeline"):
        ids = [http.post("/v1/jobs", json={"text": text, "quality": "timed"}).json()["id"] for text in texts]
        jobs = [wait_final(http, job_id) for job_id in ids]
    runs = []
    for job in jobs:
        assert job["status"] == "succeeded" and job["engine"] == "timed", job
        (attempt,) = job["attempts"]  # once each
        started, finished = at(attempt["started_at"]), at(attempt["finished_at"])
        runs.append((started, job["synthesis_seconds"], finished, attempt["worker"]))
    runs.sort()
    assert len({worker for *_, worker in runs}) == 2, "both pool processes of the one worker took jobs"
    # A job is begun once its process holds the engine's slot, and the slot is let go when its
    # synthesis ends: no synthesis overlaps the next.
    for (started, seconds, _, _), (following, _, _, _) in itertools.pairwise(runs):
        assert following >= started + timedelta(seconds=seconds)
    # ...but the next does overlap the storing and recording of the one before.
    assert any(following < finished for (_, _, finished, _), (following, _, _, _) in itertools.pairwise(runs))


@pytest.mark.fault_injection
def test_a_job_waiting_for_the_slot_past_its_soft_limit_goes_back_unbegun(http: httpx.Client) -> None:
    # `clogged` ignores its soft limit (2 s) and holds the slot until its hard limit (5 s) kills
    # its process. The second job waits for the slot past its own soft limit: it must go back on
    # the queue without an attempt, then get a run of its own, not be blamed for the first's.
    with more_workers("clogged", 1, 1, "--pipeline"):
        ids = [
            http.post("/v1/jobs", json={"text": f"Clogged, the {n} in line.", "quality": "clogged"}).json()["id"]
            for n in ("first", "second")
        ]
        jobs = [wait_final(http, job_id, timeout=60) for job_id in ids]
    for job in jobs:
        assert job["status"] == "succeeded" and job["engine"] == "piper", job
        assert [(a["engine"], a["outcome"]) for a in job["attempts"]] == [("clogged", "failed"), ("piper", "succeeded")]
        assert "TimeLimitExceeded" in job["attempts"][0]["error"]
    first, second = sorted(at(job["attempts"][0]["started_at"]) for job in jobs)
    # The second began only once the first's process was killed at its hard limit, 5 s in.
    assert second - first >= timedelta(seconds=4.5), "two syntheses held one slot"
