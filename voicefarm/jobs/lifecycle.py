"""A job's transitions, each one database transaction: begin (a worker takes it), reroute (an
attempt failed: on to the next engine of its chain), abandon (its worker died: send it again),
finish (its audio is stored) and settle (its final outcome, copied to every job that followed it).

Each transition that sends a job again gives it the next dispatch number, and its message
carries that number: a message with an older one is a stale copy (a late redelivery) and
finds nothing to do, so a job never runs twice at once.

Deduplication lives here too: at most one synthesis is in flight per content key (a unique
index), so a job that would be a second one follows the first instead, at submit or when it
moves to another engine.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from voicefarm.audio import alignment
from voicefarm.dispatch.app import Message
from voicefarm.dispatch.priorities import priorities
from voicefarm.engines.base import SynthesisRequest, Voice, Word
from voicefarm.fleet import breaker
from voicefarm.fleet.heartbeat import available
from voicefarm.jobs import notify
from voicefarm.jobs.batches import finish_if_done
from voicefarm.library import renditions, timestamps
from voicefarm.library.cache import CachedAudio
from voicefarm.library.voices import as_voice
from voicefarm.settings import get_settings
from voicefarm.store import db
from voicefarm.store.models import ACTIVE, Attempt, ClonedVoice, Job, JobStatus, Link, Outcome, utcnow
from voicefarm.store.objects import get_store
from voicefarm.telemetry import counters

log = logging.getLogger(__name__)

# What a job's outcome is made of: settle and a late follower copy exactly these.
OUTCOME = (
    "status",
    "engine",
    "object_key",
    "duration",
    "sample_rate",
    "synthesis_seconds",
    "error",
    "started_at",
    "finished_at",
)


@dataclass(frozen=True)
class Run:
    """One attempt of one job on a worker's engine."""

    job_id: str
    attempt_id: int
    request: SynthesisRequest
    key: str
    source: str
    format: str
    rate: int | None  # the output rate asked for
    sample: tuple[str, Voice] | None  # (object key, Voice) of a cloned voice's sample
    move_on: str | None = None  # set when the job must leave this engine without trying it


def in_flight(s: Session, key: str, besides: str | None = None) -> Job | None:
    """The job synthesizing this content key now, if any: the one others follow."""
    query = select(Job).where(Job.content_key == key, Job.leader_id.is_(None), Job.status.in_(ACTIVE))
    if besides is not None:
        query = query.where(Job.id != besides)
    return s.scalars(query).first()


def copy_outcome(leader: Job, follower: Job) -> None:
    for field in OUTCOME:
        setattr(follower, field, getattr(leader, field))


def message(s: Session, job: Job) -> Message:
    """The message that sends this job, as it stands, to its engine's queue."""
    (priority,) = priorities(s, job.tenant_id, 1, batch=job.batch_id is not None)
    return Message.of(job, priority)


def resend(s: Session, job: Job) -> Message:
    """Give the job its next dispatch number, making any message sent before stale."""
    job.dispatch += 1
    s.flush()
    return message(s, job)


def begin(job_id: str, engine: str, worker: str, dispatch: int | None = None) -> Run | None:
    """Mark the job running and open an attempt; None when there is nothing to do. `dispatch`
    is the number the message carries (None: a message from before dispatch numbers)."""
    settings = get_settings()
    with db.session() as s:
        job = s.get(Job, job_id, with_for_update=True)
        if job is None or job.status not in ACTIVE or job.engine != engine:
            # Late acks mean a message can come back after its job finished or moved on; running
            # it again would be a second synthesis of the same job.
            log.info("job %s: nothing to do here (%s)", job_id, job.status if job else "no such job")
            return None
        if dispatch is not None and dispatch != job.dispatch:
            # The job was sent again since (its worker was found dead): this copy of the old
            # message came back late, while the new one runs or waits.
            log.info("job %s: stale message %d (the job is on dispatch %d)", job_id, dispatch, job.dispatch)
            return None
        now = utcnow()
        for a in job.attempts:
            if a.outcome == Outcome.running:  # redelivered: the worker of that attempt died
                a.outcome, a.finished_at = Outcome.lost.value, now
                a.error = "the worker died during synthesis (killed, crashed or out of memory)"
                counters.on_commit(s, counters.attempts.labels(a.engine, Outcome.lost.value).inc)
        lost_here = sum(a.outcome == Outcome.lost and a.engine == engine for a in job.attempts)
        job.status = JobStatus.running.value
        job.started_at = job.started_at or now
        attempt = Attempt(job_id=job.id, engine=engine, worker=worker)
        s.add(attempt)
        s.flush()
        link = job.link
        return Run(
            job_id=job.id,
            attempt_id=attempt.id,
            request=SynthesisRequest(text=job.text, voice=link.voice, language=job.language, speed=job.speed),
            key=job.content_key,
            source=link.source,
            format=job.format,
            rate=job.output_rate,
            sample=sample(s, link),
            move_on=(
                f"workers died {lost_here} times on this job; moving on"
                if lost_here > settings.max_lost_per_engine
                else None
            ),
        )


def sample(s: Session, link: Link) -> tuple[str, Voice] | None:
    """The stored sample of the cloned voice a link speaks, if it speaks one."""
    cloned = s.get(ClonedVoice, link.voice) if link.cloned else None
    return (cloned.sample_key, as_voice(cloned, get_settings())) if cloned else None


def reroute(job_id: str, attempt_id: int | None, error: str, engine: str | None = None) -> Message | None:
    """Close the failed attempt (given, or the open one on `engine`), count it against the
    engine's breaker, and move the job to the next engine of its chain that has a live worker
    and a closed breaker; returns the message that sends it there, or None when the job failed
    for good, follows another job, or has already moved on."""
    with db.session() as s:
        job = s.get(Job, job_id, with_for_update=True)
        if job is None or job.status not in ACTIVE or (engine is not None and job.engine != engine):
            return None
        now = utcnow()
        failed = [
            a
            for a in job.attempts
            if a.outcome == Outcome.running and (a.id == attempt_id or (attempt_id is None and a.engine == engine))
        ]
        if not failed:
            # Celery may report one death twice (the hard limit, then the reaped child): the
            # first report already moved the job on. Or the attempt was given up for lost and
            # the job sent again (abandon): like a late success (finish), its failure is dropped.
            return None
        settings = get_settings()
        for a in failed:
            a.outcome, a.error, a.finished_at = Outcome.failed.value, f"{a.engine}: {error}", now
            breaker.failed(s, a.engine, error, settings)
            counters.on_commit(s, counters.attempts.labels(a.engine, Outcome.failed.value).inc)
        links = job.links
        position = [link.engine for link in links].index(job.engine)
        where = available(s, settings)
        following = next((link for link in links[position + 1 :] if where.usable(s, link.engine)), None)
        if following is None:
            errors = "; ".join(a.error or a.outcome for a in job.attempts if a.outcome != Outcome.succeeded)
            settle(
                s,
                job,
                {"status": JobStatus.failed.value, "finished_at": now, "error": f"every engine failed: {errors}"},
            )
            return None
        for a in failed:
            a.rerouted_to = following.engine
            counters.on_commit(s, counters.fallbacks.labels(a.engine, following.engine).inc)
        job.status = JobStatus.queued.value
        return resend(s, job) if move(s, job, following) else None


def abandon(job_id: str, attempt_id: int, error: str) -> Message | None:
    """Close an attempt whose worker died without a word (the broker would give its message
    back only after the visibility timeout) as lost, and send the job again; None when the
    attempt has closed since, or the job is no longer running."""
    with db.session() as s:
        job = s.get(Job, job_id, with_for_update=True)
        attempt = s.get(Attempt, attempt_id)
        if job is None or job.status != JobStatus.running.value or attempt is None:
            return None
        if attempt.outcome != Outcome.running:
            return None
        attempt.outcome, attempt.error, attempt.finished_at = Outcome.lost.value, error, utcnow()
        counters.on_commit(s, counters.attempts.labels(attempt.engine, Outcome.lost.value).inc)
        job.status = JobStatus.queued.value
        return resend(s, job)


def requeue(job_id: str) -> Message | None:
    """Send a job whose message the broker lost again; None if it is no longer waiting."""
    with db.session() as s:
        job = s.get(Job, job_id, with_for_update=True)
        if job is None or job.status not in ACTIVE or job.leader_id is not None:
            return None
        return resend(s, job)


def move(s: Session, job: Job, link: Link) -> bool:
    """Point the job at another engine; False when it follows a job there instead. If an
    identical job is already in flight there, follow it (and bring our followers along) rather
    than synthesize the same audio twice."""
    try:
        with s.begin_nested():
            job.engine, job.content_key = link.engine, link.key
        return True
    except IntegrityError:
        leader = in_flight(s, link.key, besides=job.id)
        assert leader is not None, "the unique index held another job in flight"
        job.engine, job.content_key, job.leader_id = link.engine, link.key, leader.id
        s.execute(update(Job).where(Job.leader_id == job.id).values(leader_id=leader.id))
        return False


def settle(s: Session, job: Job, outcome: dict[str, Any]) -> bool:
    """Write a final outcome on a job and every follower waiting on it; then finish their
    batches and announce their callbacks. True when the job or a follower asked for timestamps.
    A job its owner canceled while others followed it ran on for them: it ends canceled
    (announced when it was canceled), and its followers get the outcome."""
    for field, value in outcome.items():
        setattr(job, field, value)
    # The followers are the rows this update wrote (RETURNING), not those a query found a moment
    # before: a follower that commits in between would be settled and never announced or aligned.
    followers = s.execute(
        update(Job)
        .where(Job.leader_id == job.id, Job.status.in_(ACTIVE))
        .values({field: getattr(job, field) for field in OUTCOME})
        .returning(Job.id, Job.batch_id, Job.callback_url, Job.timestamps)
    ).all()
    state, own = job.status, [] if job.canceled_at else [(job.id, job.batch_id, job.callback_url, job.timestamps)]
    if job.canceled_at:
        job.status = JobStatus.canceled.value
        counters.on_commit(s, counters.jobs_finished.labels(job.engine, job.status).inc)
    for job_id, _, callback, _ in [*own, *followers]:
        if callback:
            notify.announce_after_commit(s, "job", job_id)
    counters.on_commit(s, partial(counters.jobs_finished.labels(job.engine, state).inc, len(own) + len(followers)))
    s.flush()
    finish_if_done(s, [job.batch_id, *(batch_id for _, batch_id, _, _ in followers)])
    return any(wants for *_, wants in [*own, *followers])


def finish(
    job_id: str, attempt_id: int, *, audio: CachedAudio, seconds: float, words: Sequence[Word] | None = None
) -> bool:
    """Record success on the attempt, the job, its followers and the rendition's durable record,
    in one transaction so no reader sees half of it; with the engine's own word timings
    (`words`) when it has them, else an alignment asked of the aligner when the job or a
    follower wants timestamps. False when the job is gone (its voice was
    purged while it ran: then nothing made from it is kept), or when this attempt was given up
    for lost and the job sent again (the new attempt records the same audio)."""
    with db.session() as s:
        job = s.get(Job, job_id, with_for_update=True)
        if job is None:
            get_store().delete(audio.object_key)
            return False
        now = utcnow()
        run = s.get(Attempt, attempt_id)
        assert run is not None, "the attempt belongs to the job"
        if run.outcome != Outcome.running:
            log.warning("job %s: attempt %d was given up as %s; its result is dropped", job_id, attempt_id, run.outcome)
            return False
        run.outcome, run.finished_at = Outcome.succeeded.value, now
        breaker.succeeded(s, run.engine)
        counters.synthesized(s, job, audio, seconds, now)
        link = job.link
        renditions.record(s, audio, link.source, link.voice)
        if words is not None:
            timestamps.record(s, link.source, alignment.match(job.spoken, words, audio.duration), alignment.ENGINE)
        wanted = settle(
            s,
            job,
            {
                "status": JobStatus.succeeded.value,
                "error": None,
                "finished_at": now,
                "synthesis_seconds": seconds,
                "engine": audio.engine,
                "object_key": audio.object_key,
                "duration": audio.duration,
                "sample_rate": audio.sample_rate,
            },
        )
        if words is None and wanted:
            timestamps.request(s, job)
    return True
