"""A job's transitions, each one database transaction: begin (a worker takes it), reroute (an
attempt failed: on to the next engine of its chain), finish (its audio is stored) and settle
(its final outcome, copied to every job that followed it).

Deduplication lives here too: at most one synthesis is in flight per content key (a unique
index), so a job that would be a second one follows the first instead, at submit or when it
moves to another engine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from voicefarm import breaker, db, renditions, webhooks
from voicefarm.cache import CachedAudio
from voicefarm.engines.base import SynthesisRequest, Voice
from voicefarm.heartbeat import available
from voicefarm.jobs.batches import finish_if_done
from voicefarm.jobs.chain import Link
from voicefarm.models import ACTIVE, Attempt, ClonedVoice, Job, JobStatus, Outcome, utcnow
from voicefarm.settings import get_settings
from voicefarm.storage import get_store
from voicefarm.voices import as_voice

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


def begin(job_id: str, engine: str, worker: str) -> Run | None:
    """Mark the job running and open an attempt; None when there is nothing to do."""
    settings = get_settings()
    with db.session() as s:
        job = s.get(Job, job_id, with_for_update=True)
        if job is None or job.status not in ACTIVE or job.engine != engine:
            # Late acks mean a message can come back after its job finished or moved on; running
            # it again would be a second synthesis of the same job.
            log.info("job %s: nothing to do here (%s)", job_id, job.status if job else "no such job")
            return None
        now = utcnow()
        for a in job.attempts:
            if a.outcome == Outcome.running:  # redelivered: the worker of that attempt died
                a.outcome, a.finished_at = Outcome.lost.value, now
                a.error = "the worker died during synthesis (killed, crashed or out of memory)"
        lost_here = sum(a.outcome == Outcome.lost and a.engine == engine for a in job.attempts)
        job.status = JobStatus.running.value
        job.started_at = job.started_at or now
        attempt = Attempt(job_id=job.id, engine=engine, worker=worker)
        s.add(attempt)
        s.flush()
        link = job.link
        cloned = s.get(ClonedVoice, link.voice) if link.cloned else None
        return Run(
            attempt_id=attempt.id,
            request=SynthesisRequest(text=job.text, voice=link.voice, language=job.language, speed=job.speed),
            key=job.content_key,
            source=link.source,
            format=job.format,
            rate=job.output_rate,
            sample=(cloned.sample_key, as_voice(cloned, settings)) if cloned else None,
            move_on=(
                f"workers died {lost_here} times on this job; moving on"
                if lost_here > settings.max_lost_per_engine
                else None
            ),
        )


def reroute(job_id: str, attempt_id: int | None, error: str, engine: str | None = None) -> str | None:
    """Close the failed attempt (given, or the open one on `engine`), count it against the
    engine's breaker, and move the job to the next engine of its chain that has a live worker
    and a closed breaker; returns that engine, or None when the job failed for good, follows
    another job, or has already moved on."""
    with db.session() as s:
        job = s.get(Job, job_id, with_for_update=True)
        if job is None or job.status not in ACTIVE or (engine is not None and job.engine != engine):
            return None
        now = utcnow()
        failed = [
            a
            for a in job.attempts
            if a.id == attempt_id or (attempt_id is None and a.outcome == Outcome.running and a.engine == engine)
        ]
        if not failed:
            # Celery may report one death twice (the hard limit, then the reaped child): the
            # first report already moved the job on.
            return None
        settings = get_settings()
        for a in failed:
            a.outcome, a.error, a.finished_at = Outcome.failed.value, f"{a.engine}: {error}", now
            breaker.failed(s, a.engine, error, settings)
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
        job.status = JobStatus.queued.value
        return move(s, job, following)


def move(s: Session, job: Job, link: Link) -> str | None:
    """Point the job at another engine. If an identical job is already in flight there, follow
    it (and bring our followers along) instead of synthesizing the same audio twice."""
    try:
        with s.begin_nested():
            job.engine, job.content_key = link.engine, link.key
        return link.engine
    except IntegrityError:
        leader = in_flight(s, link.key, besides=job.id)
        assert leader is not None, "the unique index held another job in flight"
        job.engine, job.content_key, job.leader_id = link.engine, link.key, leader.id
        s.execute(update(Job).where(Job.leader_id == job.id).values(leader_id=leader.id))
        return None


def settle(s: Session, job: Job, outcome: dict[str, Any]) -> None:
    """Write a final outcome on a job and every follower waiting on it; then finish their
    batches and announce their callbacks."""
    followers = s.execute(
        select(Job.id, Job.batch_id, Job.callback_url).where(Job.leader_id == job.id, Job.status.in_(ACTIVE))
    ).all()
    for field, value in outcome.items():
        setattr(job, field, value)
    s.execute(
        update(Job)
        .where(Job.leader_id == job.id, Job.status.in_(ACTIVE))
        .values({field: getattr(job, field) for field in OUTCOME})
    )
    for job_id, _, callback in [(job.id, job.batch_id, job.callback_url), *followers]:
        if callback:
            webhooks.announce_after_commit(s, "job", job_id)
    s.flush()
    finish_if_done(s, [job.batch_id, *(batch_id for _, batch_id, _ in followers)])


def finish(job_id: str, attempt_id: int, *, audio: CachedAudio, seconds: float) -> bool:
    """Record success on the attempt, the job, its followers and the rendition's durable record,
    in one transaction so no reader sees half of it. False when the job is gone (its voice was
    purged while it ran): then nothing made from it is kept."""
    with db.session() as s:
        job = s.get(Job, job_id)
        if job is None:
            get_store().delete(audio.object_key)
            return False
        now = utcnow()
        run = s.get(Attempt, attempt_id)
        assert run is not None, "the attempt belongs to the job"
        run.outcome, run.finished_at = Outcome.succeeded.value, now
        breaker.succeeded(s, run.engine)
        link = job.link
        renditions.record(s, audio, link.source, link.voice)
        settle(
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
    return True
