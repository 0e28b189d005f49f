"""The reconciler's repairs, in process on SQLite: attempts that no live worker runs are given up
and their jobs sent again."""

from __future__ import annotations

import pytest

from tests.unit.embedded import broker_messages, job, new_job
from voicefarm.dispatch.app import Message, enqueue, part_id
from voicefarm.dispatch.names import engine_queue
from voicefarm.dispatch.priorities import INTERACTIVE
from voicefarm.fleet import heartbeat
from voicefarm.jobs.lifecycle import begin
from voicefarm.ops.reconcile import recover, unrun_attempts
from voicefarm.settings import Settings

pytestmark = pytest.mark.usefixtures("farm")

WORKER = "xtts@host:7"


def beats(*held: str) -> None:
    """The xtts worker beats, holding these task ids."""
    heartbeat.beat(WORKER, "xtts", {}, lambda: list(held))


def test_an_attempt_that_its_live_worker_no_longer_holds_is_sent_again(farm: Settings) -> None:
    beats()
    queued = new_job("My pool process was killed, and my message never came back.")
    run = begin(queued.id, "xtts", f"{WORKER}/42", 0)
    assert run is not None
    beats(queued.id)
    assert unrun_attempts(farm) == ([], [])  # it holds the job: its run goes on

    beats()
    dropped = (queued.id, run.attempt_id, f"the worker {WORKER} no longer holds the job")
    assert unrun_attempts(farm) == ([], [dropped])
    assert recover(farm, settle_seconds=0) == [queued.id]
    now = job(queued.id)
    assert (now.status, now.dispatch) == ("queued", 1)
    assert [(a.outcome, a.error) for a in now.attempts] == [("lost", f"the worker {WORKER} no longer holds the job")]
    assert [(queue, headers["id"]) for queue, headers in broker_messages(farm)] == [(engine_queue("xtts"), queued.id)]
    assert recover(farm, settle_seconds=0) == []  # sent again once


def test_a_dropped_attempt_whose_message_is_back_in_the_broker_is_left_to_it(farm: Settings) -> None:
    """A pool process killed under its job gives the message back: the job runs again from it."""
    beats()
    queued = new_job("My pool process was killed; my message went back on the queue.")
    run = begin(queued.id, "xtts", f"{WORKER}/42", 0)
    assert run is not None
    enqueue(Message.of(job(queued.id), INTERACTIVE), farm)  # the message, given back
    beats()
    assert unrun_attempts(farm) == ([], [(queued.id, run.attempt_id, f"the worker {WORKER} no longer holds the job")])
    assert recover(farm, settle_seconds=0) == []
    assert job(queued.id).dispatch == 0


def test_a_beat_from_before_the_attempt_began_says_nothing_of_it(farm: Settings) -> None:
    beats()
    queued = new_job("I began after my worker's last beat.")
    assert begin(queued.id, "xtts", f"{WORKER}/42", 0) is not None
    assert unrun_attempts(farm) == ([], [])


def test_a_document_part_held_holds_its_job(farm: Settings) -> None:
    beats()
    queued = new_job("A document's segment runs under a task id of its own.")
    assert begin(queued.id, "xtts", f"{WORKER}/42", 0) is not None
    beats(part_id(queued.id, 0, "segment-1"))
    assert unrun_attempts(farm) == ([], [])
