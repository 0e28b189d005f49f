"""Cancel (voicefarm.jobs.cancel) on an embedded farm: a queued job never runs, a running one's
attempt is closed for its worker to see, a synthesis others follow goes on for them, a batch is
canceled job by job; listeners are told through the feed, callbacks through the broker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.unit.embedded import (
    OTHER,
    attempts,
    audio,
    batch,
    batch_row,
    broker_messages,
    follower,
    job,
    live,
    new_job,
)
from voicefarm.dispatch import names
from voicefarm.errors import JobCanceled
from voicefarm.jobs.cancel import attempt_canceled, cancel_batch, cancel_job
from voicefarm.jobs.feeds import get_feed
from voicefarm.jobs.lifecycle import Run, begin, finish, reroute
from voicefarm.jobs.payloads import batch_out, job_out
from voicefarm.settings import Settings
from voicefarm.store import db
from voicefarm.store.models import Batch, Job
from voicefarm.worker import limits
from voicefarm.worker.limits import Limits, within

pytestmark = pytest.mark.usefixtures("farm")


def announced(settings: Settings) -> list[str]:
    return [h["argsrepr"] for queue, h in broker_messages(settings) if queue == names.WEBHOOK_QUEUE]


def feed_kinds(job_id: str) -> list[tuple[str, str | None]]:
    async def read() -> list[tuple[str, str | None]]:
        entries, _ = await get_feed().read(job_id, "0", 0.01)
        return [(e.kind, e.job) for e in entries]

    return asyncio.run(read())


def test_a_queued_job_canceled_never_runs_and_its_callback_says_so(farm: Settings) -> None:
    live("xtts", "piper")
    queued = new_job("Cancel me before I run.", callback_url="https://example.com/hook")

    cancel_job(queued.id)

    now = job(queued.id)
    assert (now.status, now.error) == ("canceled", "canceled by its owner") and now.finished_at is not None
    assert job_out(now, "http://farm/").status == "canceled"
    assert begin(queued.id, "xtts", "w/1", 0) is None  # its message, when a worker takes it
    assert attempts(queued.id) == []
    assert announced(farm) == [repr(["job", queued.id])]
    assert feed_kinds(queued.id) == [("canceled", queued.id)]  # its listeners stop at once

    cancel_job(queued.id)  # again: nothing more happens
    assert announced(farm) == [repr(["job", queued.id])]


def test_a_running_job_canceled_closes_its_attempt_for_its_worker_to_see() -> None:
    live("xtts", "piper")
    running = new_job("Cancel me while I speak.")
    run = begin(running.id, "xtts", "w/1", 0)
    assert run is not None and not attempt_canceled(run.attempt_id)

    cancel_job(running.id)

    assert attempt_canceled(run.attempt_id)
    assert attempts(running.id) == [("xtts", "canceled")]
    # Whatever the worker reports after that changes nothing: no audio recorded, no fallback.
    assert not finish(running.id, run.attempt_id, audio=audio(run, "xtts"), seconds=0.5)
    assert reroute(running.id, run.attempt_id, "RuntimeError: late") is None
    assert job(running.id).status == "canceled" and attempts(running.id) == [("xtts", "canceled")]


def test_a_job_that_ended_first_keeps_its_outcome() -> None:
    live("xtts", "piper")
    done = new_job("I finished before the cancel came.")
    run = begin(done.id, "xtts", "w/1", 0)
    assert run is not None and finish(done.id, run.attempt_id, audio=audio(run, "xtts"), seconds=0.5)

    cancel_job(done.id)

    assert job(done.id).status == "succeeded" and job(done.id).canceled_at is None


def test_a_synthesis_others_follow_goes_on_for_them_and_stops_once_none_wants_it() -> None:
    live("xtts", "piper")
    leader = new_job("Said once for two owners.")
    first = follower("Said once for two owners.", tenant=OTHER)
    second = follower("Said once for two owners.", tenant=OTHER)
    run = begin(leader.id, "xtts", "w/1", 0)
    assert run is not None

    cancel_job(leader.id)  # its owner is gone, its followers are not
    assert job_out(job(leader.id), "http://farm/").status == "canceled"
    assert job(leader.id).status == "running" and not attempt_canceled(run.attempt_id)
    assert feed_kinds(leader.id) == [("canceled", leader.id)]  # its own listeners only

    cancel_job(first.id)  # one follower left: still wanted
    assert job(first.id).status == "canceled" and not attempt_canceled(run.attempt_id)
    assert feed_kinds(leader.id)[-1] == ("canceled", first.id)  # a follower's listeners read its leader's feed

    cancel_job(second.id)  # nobody wants it now: it stops
    assert attempt_canceled(run.attempt_id)
    assert [job(j.id).status for j in (leader, first, second)] == ["canceled"] * 3


def running_with_a_follower(text: str) -> tuple[Job, Job, Run]:
    """A job running on xtts, and another tenant's identical request that follows it."""
    live("xtts", "piper")
    leader = new_job(text)
    waiting = follower(text, tenant=OTHER)
    run = begin(leader.id, "xtts", "w/1", 0)
    assert run is not None
    return leader, waiting, run


def test_a_canceled_leader_that_finishes_settles_its_followers_and_stays_canceled() -> None:
    leader, waiting, run = running_with_a_follower("Finished for my follower alone.")
    cancel_job(leader.id)

    assert finish(leader.id, run.attempt_id, audio=audio(run, "xtts"), seconds=0.5)

    assert job(waiting.id).status == "succeeded" and job(waiting.id).object_key is not None
    assert job(leader.id).status == "canceled"
    assert attempts(leader.id) == [("xtts", "succeeded")]  # the synthesis itself did succeed


def test_a_follower_canceled_leaves_its_leader_running() -> None:
    leader, waiting, run = running_with_a_follower("My follower changed its mind.")

    cancel_job(waiting.id)

    assert job(waiting.id).status == "canceled"
    assert job(leader.id).status == "running" and job(leader.id).canceled_at is None
    assert not attempt_canceled(run.attempt_id)


def test_a_request_that_finds_its_leader_canceled_leads_itself() -> None:
    live("xtts", "piper")
    leader = new_job("Asked again after the first was canceled.")
    cancel_job(leader.id)
    again = new_job("Asked again after the first was canceled.")  # not a follower of a canceled job
    assert again.leader_id is None and job(again.id).status == "queued"


def test_a_batch_canceled_cancels_its_unfinished_jobs_and_is_done(farm: Settings) -> None:
    live("xtts", "piper")
    batch_id, (done, running, queued) = batch(["Done first.", "Running now.", "Never begun."])
    run = begin(done.id, "xtts", "w/1", 0)
    assert run is not None and finish(done.id, run.attempt_id, audio=audio(run, "xtts"), seconds=0.5)
    running_run = begin(running.id, "xtts", "w/1", 0)
    assert running_run is not None

    cancel_batch(batch_id)

    assert [job(j.id).status for j in (done, running, queued)] == ["succeeded", "canceled", "canceled"]
    assert attempt_canceled(running_run.attempt_id)
    assert batch_row(batch_id).status == "done"
    with db.session() as s:
        row = s.get(Batch, batch_id)
        assert row is not None
        out = batch_out(s, row, "http://farm/")
    assert (out.counts.succeeded, out.counts.canceled, out.progress) == (1, 2, 1.0)


def test_a_run_stops_at_its_next_piece_once_its_job_is_canceled(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = []

    def pieces() -> Iterator[int]:
        try:
            yield from range(100)
        finally:
            closed.append(True)  # the engine's stream: a batching engine's sequence leaves here

    def asks(cancel_at: int) -> tuple[list[int], int]:
        looks = []

        def canceled() -> bool:
            looks.append(1)
            return len(looks) == cancel_at

        heard = []
        try:
            for piece in within(pieces(), Limits(), canceled):
                heard.append(piece)
        except JobCanceled:
            pass
        return heard, len(looks)

    monkeypatch.setattr(limits, "CANCEL_LOOK_SECONDS", 0.0)  # asks before every piece
    assert asks(cancel_at=3) == ([0, 1], 3) and closed == [True]
    monkeypatch.setattr(limits, "CANCEL_LOOK_SECONDS", 3600.0)  # asks once, at the first piece
    assert asks(cancel_at=2) == (list(range(100)), 1)
