"""Submitting (voicefarm.jobs.submit) on an embedded farm: a job recorded once per content key,
identical requests following it, the engine it starts on, and its message in the filesystem
broker."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from tests.unit.embedded import (
    OTHER,
    TENANT,
    attempts,
    audio,
    broker_messages,
    follower,
    job,
    live,
    new_job,
    plan,
    request,
)
from voicefarm.dispatch import names
from voicefarm.jobs import recording
from voicefarm.jobs.lifecycle import begin, finish, in_flight
from voicefarm.library.cache import CachedAudio
from voicefarm.settings import Settings
from voicefarm.store import db
from voicefarm.store.models import Job

pytestmark = pytest.mark.usefixtures("farm")


def leaders(key: str) -> int:
    with db.session() as s:
        return s.scalar(select(func.count(Job.id)).where(Job.content_key == key, Job.leader_id.is_(None))) or 0


def test_identical_requests_are_recorded_once_and_follow_that_synthesis() -> None:
    live("xtts", "piper")
    first = new_job("Two callers asked for this, and then a third.")
    same = follower("Two callers asked for this, and then a third.")
    other_tenant = follower("Two callers asked for this,   and then a third.", tenant=OTHER)  # same once normalised
    assert same.leader_id == other_tenant.leader_id == first.id
    assert same.content_key == other_tenant.content_key == first.content_key and leaders(first.content_key) == 1
    with db.session() as s:
        assert in_flight(s, first.content_key) is not None and in_flight(s, first.content_key).id == first.id  # type: ignore[union-attr]
        assert in_flight(s, first.content_key, besides=first.id) is None

    # Another format, rate or speed is another file: a synthesis of its own.
    for changed in (dict(format="mp3"), dict(sample_rate=16000), dict(speed=1.5)):
        p = plan("Two callers asked for this, and then a third.", **changed)
        assert p.keys[0] != first.content_key
    # The unique index, not the code path, is what keeps it one: a second leader cannot be recorded.
    with pytest.raises(IntegrityError, match=r"UNIQUE constraint failed: jobs\.content_key"), db.session() as s:
        fields = recording.job_fields(TENANT, plan("Two callers asked for this, and then a third."), 0)
        s.add(Job(**fields))
        s.flush()


def test_a_job_starts_on_the_first_engine_of_its_chain_with_a_live_worker() -> None:
    assert new_job("Nobody is up yet.").engine == "xtts"  # none live: it waits on the first engine's queue
    live("piper")
    started = new_job("Only piper is up.")
    assert started.engine == "piper" and started.content_key == started.chain[1]["key"]
    live("xtts")
    assert new_job("Everyone is up.").engine == "xtts"


def test_an_idempotency_key_returns_the_tenants_first_job() -> None:
    live("xtts")
    first = new_job("Say this once, however often I ask.", idempotency_key="order-1")
    again, send = request("Say this once, however often I ask.", idempotency_key="order-1")
    assert isinstance(again, Job) and again.id == first.id and not send
    elsewhere, send = request("Say this once, however often I ask.", tenant=OTHER, idempotency_key="order-1")
    assert isinstance(elsewhere, Job) and elsewhere.leader_id == first.id  # another tenant's key is its own


def test_finished_audio_answers_an_identical_request_without_a_job() -> None:
    live("xtts")
    first = new_job("Cache me.")
    run = begin(first.id, "xtts", "w/1", 0)
    assert run is not None and finish(first.id, run.attempt_id, audio=audio(run, "xtts"), seconds=0.5)
    hit, send = request("Cache me.")
    assert isinstance(hit, CachedAudio) and not send
    assert (hit.content_key, hit.object_key) == (first.content_key, job(first.id).object_key)
    with db.session() as s:
        assert s.scalar(select(func.count(Job.id))) == 1
    assert attempts(first.id) == [("xtts", "succeeded")]


def test_send_puts_the_new_job_on_its_engines_queue(farm: Settings) -> None:
    live("piper")
    queued = new_job("Off to the broker.")
    with db.session() as s:
        recording.send(s, [s.get(Job, queued.id)], farm)  # type: ignore[list-item]
    [(queue, headers)] = broker_messages(farm)
    assert queue == names.engine_queue("piper")
    assert (headers["id"], headers["task"]) == (queued.id, names.SYNTHESIZE)
    assert headers["argsrepr"] == repr([queued.id, 0])
    assert job(queued.id).status == "queued"  # the broker holds it; no worker took it yet
