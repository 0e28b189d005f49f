"""A batch's state is its jobs' states (voicefarm.jobs.batches), on an embedded farm: done once no
job of it is in flight, announced through the filesystem broker once that commits."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from tests.unit.embedded import audio, batch, batch_row, broker_messages, job, live, new_job
from voicefarm.dispatch import names
from voicefarm.jobs.batches import finish_if_done, sweep
from voicefarm.jobs.lifecycle import begin, finish, reroute
from voicefarm.settings import Settings
from voicefarm.store import db
from voicefarm.store.models import Batch, Job

pytestmark = pytest.mark.usefixtures("farm")


def announced(settings: Settings) -> list[str]:
    return [h["argsrepr"] for queue, h in broker_messages(settings) if queue == names.WEBHOOK_QUEUE]


def test_a_batch_is_done_once_none_of_its_jobs_is_in_flight_and_then_announced(farm: Settings) -> None:
    live("xtts")  # piper is down: a failure on xtts ends the chain
    batch_id, to_send = batch(["One item.", "Another item."], callback_url="https://example.com/hook")
    succeeds, fails = to_send

    run = begin(succeeds.id, "xtts", "w/1", 0)
    assert run is not None and finish(succeeds.id, run.attempt_id, audio=audio(run, "xtts"), seconds=0.5)
    assert batch_row(batch_id).status == "running" and announced(farm) == []
    with db.session() as s:
        finish_if_done(s, [batch_id, None])  # asked again: still a job in flight
    assert batch_row(batch_id).status == "running"

    run = begin(fails.id, "xtts", "w/1", 0)
    assert run is not None and reroute(fails.id, run.attempt_id, "RuntimeError: boom") is None
    assert (job(succeeds.id).status, job(fails.id).status) == ("succeeded", "failed")
    done = batch_row(batch_id)
    assert done.status == "done" and done.finished_at is not None
    assert announced(farm) == [repr(["batch", batch_id])]  # once, after the commit that finished it


def test_a_batch_of_cached_items_is_done_at_once() -> None:
    live("xtts")
    first = new_job("Already said.")
    run = begin(first.id, "xtts", "w/1", 0)
    assert run is not None and finish(first.id, run.attempt_id, audio=audio(run, "xtts"), seconds=0.5)

    batch_id, to_send = batch(["Already said.", "Already said."])
    assert to_send == [] and batch_row(batch_id).status == "done"
    with db.session() as s:
        items = s.query(Job).filter_by(batch_id=batch_id).order_by(Job.batch_index).all()
        assert [(j.status, j.object_key) for j in items] == [("succeeded", job(first.id).object_key)] * 2


def test_the_sweep_finishes_a_batch_whose_last_jobs_finished_at_once() -> None:
    live("xtts")
    batch_id, [only] = batch(["Raced."])
    run = begin(only.id, "xtts", "w/1", 0)
    assert run is not None and finish(only.id, run.attempt_id, audio=audio(run, "xtts"), seconds=0.5)
    with db.session() as s:  # as if the finish had seen another job of the batch still running
        s.execute(update(Batch).where(Batch.id == batch_id).values(status="running", finished_at=None))
    with db.session() as s:
        sweep(s)
    assert batch_row(batch_id).status == "done"
