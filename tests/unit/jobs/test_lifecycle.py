"""A job's transitions (voicefarm.jobs.lifecycle) on an embedded farm's SQLite database: begin,
finish and settle, reroute down the chain, abandon and requeue; what the farm tier asserts of a
whole farm, one transition at a time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from tests.unit.embedded import (
    OTHER,
    VOICE,
    attempts,
    audio,
    batch,
    batch_row,
    breaker_row,
    follower,
    job,
    live,
    new_job,
)
from voicefarm.dispatch.app import Message
from voicefarm.dispatch.priorities import INTERACTIVE
from voicefarm.jobs import lifecycle
from voicefarm.jobs.lifecycle import Run, abandon, begin, finish, in_flight, requeue, reroute
from voicefarm.library import timestamps
from voicefarm.settings import Settings
from voicefarm.store import db
from voicefarm.store.models import Job, Link, Rendition

pytestmark = pytest.mark.usefixtures("farm")


def started(job_id: str, engine: str, dispatch: int = 0, worker: str = "w/1") -> Run:
    run = begin(job_id, engine, worker, dispatch)
    assert run is not None, f"job {job_id} begins on {engine}"
    return run


@contextmanager
def commits() -> Iterator[list[Session]]:
    """Every session commit made inside, as it happens."""
    seen: list[Session] = []

    def note(s: Session) -> None:
        seen.append(s)

    event.listen(Session, "after_commit", note)
    try:
        yield seen
    finally:
        event.remove(Session, "after_commit", note)


def test_begin_opens_an_attempt_and_marks_the_job_running() -> None:
    live("xtts", "piper")
    queued = new_job("Begin me, please.")
    assert (queued.status, queued.engine, queued.dispatch, queued.started_at) == ("queued", "xtts", 0, None)

    run = started(queued.id, "xtts", worker="xtts@host:1/42")

    now = job(queued.id)
    assert now.status == "running" and now.started_at is not None
    [opened] = now.attempts
    assert (opened.id, opened.engine, opened.outcome) == (run.attempt_id, "xtts", "running")
    assert opened.worker == "xtts@host:1/42" and opened.finished_at is None
    first = Link(**now.chain[0])
    assert run.key == now.content_key == first.key and run.source == first.source
    assert (run.request.text, run.request.voice, run.format) == ("Begin me, please.", VOICE.id, "wav")
    assert run.move_on is None


def test_a_message_that_is_stale_or_for_another_engine_finds_nothing_to_do() -> None:
    live("xtts", "piper")
    queued = new_job("Only the newest message runs.")
    resent = requeue(queued.id)  # the broker lost the first message: the job is sent again
    assert resent == Message(queued.id, "xtts", 1, INTERACTIVE)

    assert begin(queued.id, "xtts", "w/1", dispatch=0) is None  # the first message, delivered late
    assert begin(queued.id, "piper", "w/1", dispatch=1) is None  # the job is not on piper
    assert begin("no-such-job", "xtts", "w/1", dispatch=0) is None
    assert job(queued.id).status == "queued" and attempts(queued.id) == []

    run = started(queued.id, "xtts", dispatch=1)
    assert finish(queued.id, run.attempt_id, audio=audio(run, "xtts"), seconds=0.5)
    assert begin(queued.id, "xtts", "w/1", dispatch=1) is None  # a redelivery after it finished
    assert requeue(queued.id) is None
    assert attempts(queued.id) == [("xtts", "succeeded")]


def test_a_redelivered_message_closes_its_dead_workers_attempt_and_moves_on_after_too_many() -> None:
    live("xtts", "piper")
    queued = new_job("Workers keep dying under me.")
    started(queued.id, "xtts")
    again = started(queued.id, "xtts")  # the broker gave the message back: its worker died
    assert again.move_on is None  # max_lost_per_engine (1) deaths are forgiven
    assert attempts(queued.id) == [("xtts", "lost"), ("xtts", "running")]
    assert "worker died" in (job(queued.id).attempts[0].error or "")

    third = started(queued.id, "xtts")
    assert third.move_on == "workers died 2 times on this job; moving on"
    assert attempts(queued.id) == [("xtts", "lost"), ("xtts", "lost"), ("xtts", "running")]


def test_finish_records_the_audio_on_the_job_its_followers_and_its_batch_in_one_transaction(
    farm: Settings,
) -> None:
    live("xtts", "piper")
    batch_id, to_send = batch(["Said once for three jobs.", "Said once for three jobs."])
    [leader] = to_send  # the batch's duplicate follows its first item
    outsider = follower("Said once for three jobs.", tenant=OTHER)  # another tenant's identical request
    assert outsider.leader_id == leader.id and batch_row(batch_id).status == "running"

    run = started(leader.id, "xtts")
    stored = audio(run, "xtts")
    with commits() as seen:
        assert finish(leader.id, run.attempt_id, audio=stored, seconds=0.75)
    assert len(seen) == 1  # one transaction: no reader sees the job done and its followers not

    done = job(leader.id)
    assert (done.status, done.engine, done.object_key, done.duration, done.sample_rate, done.error) == (
        "succeeded",
        "xtts",
        stored.object_key,
        1.25,
        22050,
        None,
    )
    assert done.synthesis_seconds == 0.75 and done.finished_at is not None
    assert attempts(leader.id) == [("xtts", "succeeded")]
    with db.session() as s:
        followers = [j.id for j in s.query(Job).filter_by(leader_id=leader.id)]
        rendition = s.get(Rendition, stored.content_key)
        assert rendition is not None and rendition.source_key == run.source and rendition.engine == "xtts"
    assert len(followers) == 2 and outsider.id in followers
    for follower_id in followers:
        settled = job(follower_id)
        assert (settled.status, settled.object_key, settled.duration, settled.finished_at) == (
            "succeeded",
            stored.object_key,
            1.25,
            done.finished_at,
        )
        assert settled.attempts == []  # settled by the leader's synthesis, never run
    finished = batch_row(batch_id)
    assert finished.status == "done" and finished.finished_at is not None
    assert in_flight_key(done.content_key) is None


def test_a_follower_that_joins_while_its_leader_finishes_is_settled_and_aligned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request for the same speech, with timestamps, commits as a follower while the leader's
    finish is under way (here: just as it settles). It is settled with the leader, and the speech
    is aligned for it: finish asks the rows it settled, not an earlier query, who wants timestamps."""
    live("xtts", "piper")
    leader = new_job("Finish me while another asks for my words.")
    run = started(leader.id, "xtts")
    asked: list[str] = []
    monkeypatch.setattr(timestamps, "align", lambda source, text, language: asked.append(source))
    joined: list[str] = []
    settle = lifecycle.settle

    def follow_then_settle(s: Session, job: Job, outcome: dict[str, Any]) -> bool:
        late = Job(**{c: getattr(job, c) for c in SAME_REQUEST}, leader_id=job.id, timestamps=True)
        s.add(late)
        s.flush()
        joined.append(late.id)
        return settle(s, job, outcome)

    monkeypatch.setattr(lifecycle, "settle", follow_then_settle)
    assert finish(leader.id, run.attempt_id, audio=audio(run, "xtts"), seconds=0.5)
    [late] = joined
    assert job(late).status == "succeeded" and job(late).object_key == job(leader.id).object_key
    assert asked == [run.source]


# What a follower shares with its leader's row: the same request by the same tenant.
SAME_REQUEST = (
    "tenant_id",
    "text",
    "voice",
    "voice_version",
    "language",
    "quality",
    "format",
    "chain",
    "engine",
    "content_key",
)


def in_flight_key(key: str) -> str | None:
    with db.session() as s:
        leader = in_flight(s, key)
        return leader.id if leader else None


def test_a_second_identical_request_follows_the_first_synthesis_and_fails_with_it() -> None:
    live("xtts")  # piper has no live worker: the chain ends at xtts
    first = new_job("Doomed, and not alone.")
    second = follower("Doomed, and not alone.")
    assert second.leader_id == first.id and second.engine == "xtts" and second.content_key == first.content_key
    assert in_flight_key(first.content_key) == first.id  # one synthesis in flight for the key

    run = started(first.id, "xtts")
    assert reroute(first.id, run.attempt_id, "RuntimeError: boom") is None  # nowhere left to go

    failed, followed = job(first.id), job(second.id)
    assert failed.status == followed.status == "failed"
    assert failed.error == followed.error == "every engine failed: xtts: RuntimeError: boom"
    assert followed.finished_at == failed.finished_at is not None


def test_a_failure_moves_the_job_down_its_chain_keeping_its_id_and_every_attempt() -> None:
    live("xtts", "piper")
    queued = new_job("Whatever happens on xtts, this gets said.")
    chain = [Link(**entry) for entry in queued.chain]
    first = started(queued.id, "xtts")

    following = reroute(queued.id, first.attempt_id, "RuntimeError: this engine always fails")
    assert following == Message(queued.id, "piper", 1, INTERACTIVE)
    moved = job(queued.id)
    assert (moved.status, moved.engine, moved.content_key, moved.dispatch) == ("queued", "piper", chain[1].key, 1)
    [failed] = moved.attempts
    assert failed.outcome == "failed" and failed.rerouted_to == "piper"
    assert failed.error == "xtts: RuntimeError: this engine always fails" and failed.finished_at is not None
    breaker = breaker_row("xtts")
    assert breaker is not None and breaker.failures == 1 and breaker.until is None  # counted, not open (3)

    # The same death reported twice (the hard limit, then the reaped child) moves it only once.
    assert reroute(queued.id, first.attempt_id, "RuntimeError: again") is None
    assert reroute(queued.id, None, "WorkerLostError", engine="xtts") is None
    assert breaker_row("xtts").failures == 1  # type: ignore[union-attr]
    assert begin(queued.id, "xtts", "w/1", dispatch=0) is None  # xtts's message came back late

    second = started(queued.id, "piper", dispatch=1)
    assert second.key == chain[1].key
    assert finish(queued.id, second.attempt_id, audio=audio(second, "piper"), seconds=0.5)
    done = job(queued.id)
    assert done.id == queued.id and (done.status, done.engine) == ("succeeded", "piper")
    assert attempts(queued.id) == [("xtts", "failed"), ("piper", "succeeded")]
    assert breaker_row("piper") is None


def test_a_run_that_died_without_reporting_is_rerouted_by_its_engine() -> None:
    live("xtts", "piper")
    queued = new_job("The hard time limit killed me.")
    started(queued.id, "xtts")
    assert reroute(queued.id, None, "TimeLimitExceeded", engine="piper") is None  # not the engine it is on
    following = reroute(queued.id, None, "TimeLimitExceeded", engine="xtts")  # the `lost` errback
    assert following is not None and following.engine == "piper"
    assert job(queued.id).attempts[0].error == "xtts: TimeLimitExceeded"


def test_the_chain_skips_engines_without_a_live_worker() -> None:
    live("xtts", "piper")  # styletts2, second in the chain, has no worker
    queued = new_job("Nobody runs styletts2.", quality="best")
    run = started(queued.id, "xtts")
    following = reroute(queued.id, run.attempt_id, "RuntimeError: boom")
    assert following is not None and following.engine == "piper"
    assert job(queued.id).attempts[0].rerouted_to == "piper"


def test_the_chain_running_out_fails_the_job_with_every_engines_error() -> None:
    live("xtts", "styletts2", "piper")
    queued = new_job("Doomed everywhere.", quality="best")
    dispatch = 0
    for engine, error in [("xtts", "RuntimeError: one"), ("styletts2", "CUDA out of memory"), ("piper", "boom")]:
        run = started(queued.id, engine, dispatch)
        following = reroute(queued.id, run.attempt_id, error)
        dispatch = following.dispatch if following is not None else dispatch
    assert following is None
    failed = job(queued.id)
    assert failed.status == "failed" and failed.finished_at is not None and failed.object_key is None
    assert failed.error == "every engine failed: xtts: RuntimeError: one; styletts2: CUDA out of memory; piper: boom"
    assert attempts(queued.id) == [("xtts", "failed"), ("styletts2", "failed"), ("piper", "failed")]
    assert [a.rerouted_to for a in failed.attempts] == ["styletts2", "piper", None]
    assert reroute(queued.id, None, "late", engine="piper") is None  # it failed for good


def test_moving_onto_an_engine_where_an_identical_job_is_in_flight_follows_that_job() -> None:
    live("xtts", "piper")
    moving = new_job("Two chains meet on piper.")
    behind = follower("Two chains meet on piper.")  # follows `moving`, and will come along
    there = new_job("Two chains meet on piper.", quality="piper")  # the same speech, already on piper
    assert there.content_key == Link(**moving.chain[1]).key

    run = started(moving.id, "xtts")
    assert reroute(moving.id, run.attempt_id, "RuntimeError: boom") is None  # not sent: it follows
    moved = job(moving.id)
    assert (moved.leader_id, moved.engine, moved.content_key) == (there.id, "piper", there.content_key)
    assert moved.dispatch == 0 and moved.status == "queued"
    assert job(behind.id).leader_id == there.id  # its followers now wait on the same synthesis
    assert requeue(moving.id) is None  # a follower is never sent

    piper = started(there.id, "piper")
    assert finish(there.id, piper.attempt_id, audio=audio(piper, "piper"), seconds=0.5)
    for job_id in (there.id, moving.id, behind.id):
        assert (job(job_id).status, job(job_id).engine) == ("succeeded", "piper")
    assert attempts(moving.id) == [("xtts", "failed")]


def test_abandon_closes_the_lost_attempt_and_sends_the_job_again() -> None:
    live("xtts", "piper")
    queued = new_job("My whole worker died.")
    run = started(queued.id, "xtts")

    resent = abandon(queued.id, run.attempt_id, "its worker stopped beating")
    assert resent == Message(queued.id, "xtts", 1, INTERACTIVE)
    now = job(queued.id)
    assert now.status == "queued" and now.engine == "xtts"
    assert [(a.outcome, a.error) for a in now.attempts] == [("lost", "its worker stopped beating")]
    assert abandon(queued.id, run.attempt_id, "again") is None  # that attempt is closed
    assert breaker_row("xtts") is None  # a dead worker is not the engine's failure

    again = started(queued.id, "xtts", dispatch=1)
    assert again.move_on is None  # one loss is forgiven
    assert finish(queued.id, again.attempt_id, audio=audio(again, "xtts"), seconds=0.5)
    assert attempts(queued.id) == [("xtts", "lost"), ("xtts", "succeeded")]


def test_the_result_of_an_attempt_given_up_for_lost_is_dropped() -> None:
    live("xtts")
    queued = new_job("Late, but not lost.")
    run = started(queued.id, "xtts")
    assert abandon(queued.id, run.attempt_id, "its worker stopped beating") is not None
    assert not finish(queued.id, run.attempt_id, audio=audio(run, "xtts"), seconds=0.5)
    assert job(queued.id).status == "queued" and attempts(queued.id) == [("xtts", "lost")]


def test_a_late_failure_of_an_attempt_given_up_for_lost_changes_nothing() -> None:
    """The reconciler gave the attempt up (its worker stopped beating) and sent the job again;
    then the old worker, alive after all, reports its failure. Like a late success (above), it
    must not touch the job, whose new attempt is running."""
    live("piper")
    queued = new_job("Given up too soon.", quality="piper")
    old = started(queued.id, "piper")
    assert abandon(queued.id, old.attempt_id, "its worker stopped beating") is not None
    new = started(queued.id, "piper", dispatch=1)

    assert reroute(queued.id, old.attempt_id, "RuntimeError: boom") is None
    now = job(queued.id)
    assert (now.status, now.engine, now.dispatch, now.error) == ("running", "piper", 1, None)
    assert attempts(queued.id) == [("piper", "lost"), ("piper", "running")]
    assert breaker_row("piper") is None

    assert finish(queued.id, new.attempt_id, audio=audio(new, "piper"), seconds=0.5)
    assert job(queued.id).status == "succeeded"
