"""The circuit breaker as jobs meet it, on an embedded farm: failures reported by the lifecycle
open it, chains skip the engine, and after its cool-down one job probes it and closes it. (Its
state machine alone: tests/unit/test_breaker.py.)"""

from __future__ import annotations

from datetime import timedelta
from itertools import count

import pytest
from sqlalchemy import update

from tests.unit.embedded import attempts, audio, breaker_row, dead, job, live, new_job
from voicefarm.fleet import breaker
from voicefarm.jobs.lifecycle import begin, finish, reroute
from voicefarm.settings import Settings
from voicefarm.store import db
from voicefarm.store.models import Breaker, utcnow

pytestmark = pytest.mark.usefixtures("farm")

texts = (f"Failure number {i}." for i in count())  # each failing job says something new


def fail_on(engine: str, n: int, error: str = "RuntimeError: boom") -> None:
    """n jobs fail on the engine, one after another; each moves on down its chain."""
    for _ in range(n):
        queued = new_job(next(texts))
        assert queued.engine == engine
        run = begin(queued.id, engine, "w/1", 0)
        assert run is not None
        following = reroute(queued.id, run.attempt_id, error)
        assert following is not None and following.engine != engine


def cool_down_ends(engine: str) -> None:
    with db.session() as s:
        s.execute(update(Breaker).where(Breaker.engine == engine).values(until=utcnow() - timedelta(seconds=1)))


def test_failures_in_a_row_open_the_breaker_and_new_jobs_skip_the_engine(farm: Settings) -> None:
    live("xtts", "styletts2", "piper")
    fail_on("xtts", farm.breaker_failures - 1)
    closed = breaker_row("xtts")
    assert closed is not None and closed.failures == 2 and closed.until is None
    assert new_job("Still welcome on xtts.").engine == "xtts"

    fail_on("xtts", 1, "RuntimeError: the last straw")
    opened = breaker_row("xtts")
    assert opened is not None and opened.failures == 3 and opened.reason == "RuntimeError: the last straw"
    assert opened.opened_at is not None and opened.until is not None
    assert opened.until - opened.opened_at == timedelta(seconds=farm.breaker_cooldown_seconds)
    assert new_job("Not on xtts now.").engine == "piper"
    assert new_job("Nor in the best tier.", quality="best").engine == "styletts2"


def test_a_failing_job_moves_past_an_engine_whose_breaker_opened_meanwhile(farm: Settings) -> None:
    live("xtts", "styletts2", "piper")
    running = new_job("Next stop styletts2, or so I thought.", quality="best")
    run = begin(running.id, "xtts", "w/1", 0)
    assert run is not None
    with db.session() as s:  # other jobs' failures open styletts2's breaker while this one runs
        for _ in range(farm.breaker_failures):
            breaker.failed(s, "styletts2", "RuntimeError: boom", farm)
    following = reroute(running.id, run.attempt_id, "RuntimeError: boom")
    assert following is not None and following.engine == "piper"
    assert job(running.id).attempts[0].rerouted_to == "piper"


def test_after_its_cool_down_one_job_probes_the_engine_and_its_success_closes_the_breaker() -> None:
    live("xtts", "piper")
    fail_on("xtts", 3)
    cool_down_ends("xtts")

    probe = new_job("I probe xtts.")
    assert probe.engine == "xtts"  # it claimed the probe, which starts a new cool-down
    reopened = breaker_row("xtts")
    assert reopened is not None and reopened.until is not None and reopened.until > utcnow()
    assert new_job("Not me: one probe at a time.").engine == "piper"

    run = begin(probe.id, "xtts", "w/1", 0)
    assert run is not None and finish(probe.id, run.attempt_id, audio=audio(run, "xtts"), seconds=0.5)
    assert breaker_row("xtts") is None  # closed, its failures forgotten
    assert new_job("xtts is back.").engine == "xtts"


def test_a_failed_probe_opens_the_breaker_again_and_the_probe_moves_on() -> None:
    live("xtts", "piper")
    fail_on("xtts", 3)
    cool_down_ends("xtts")
    probe = new_job("I probe xtts, in vain.")
    assert probe.engine == "xtts"
    run = begin(probe.id, "xtts", "w/1", 0)
    assert run is not None

    following = reroute(probe.id, run.attempt_id, "RuntimeError: still broken")
    assert following is not None and following.engine == "piper"
    still = breaker_row("xtts")
    assert still is not None and still.failures == 4 and still.reason == "RuntimeError: still broken"
    assert still.until is not None and still.until > utcnow()
    assert new_job("Still not on xtts.").engine == "piper"
    assert attempts(probe.id) == [("xtts", "failed")]


def test_an_engine_whose_worker_stopped_beating_is_skipped() -> None:
    live("xtts", "piper")
    dead("xtts")
    assert new_job("Nobody runs xtts any more.").engine == "piper"
