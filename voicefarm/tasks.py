"""The synthesis task: what a worker does with one job, top to bottom.

A worker process serves one engine (`voicefarm worker --engine NAME`), loads its model once when
the process starts, and then takes one job at a time from the engine's queue. A run that fails
(an exception, the soft time limit, the quality gate) moves the job to the next engine of its
chain with Celery's own retry onto that engine's queue; a run that dies without reporting (hard
time limit) does the same from the `lost` errback; a run whose worker was killed is redelivered
by the broker and finds its attempt still open.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from dataclasses import dataclass, replace
from functools import lru_cache

from celery import signals
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from voicefarm import batches, breaker, db, engines, quality, reference, renditions, webhooks
from voicefarm.audio import MASTER, content_type, encode
from voicefarm.cache import CachedAudio, get_cache
from voicefarm.engines.base import Engine, SynthesisRequest
from voicefarm.heartbeat import available
from voicefarm.models import ACTIVE, Attempt, ClonedVoice, Job, Status, utcnow
from voicefarm.queue import app, enqueue, route_options
from voicefarm.settings import get_settings
from voicefarm.storage import get_store
from voicefarm.voices import as_voice, latents_key

log = logging.getLogger(__name__)

ENGINE_ENV = "VOICEFARM_WORKER_ENGINE"
LOST = "lost"
_engine: Engine | None = None


@signals.worker_process_init.connect
def load_engine(**_: object) -> None:
    """Load the model in the process that will use it, before it takes a job."""
    global _engine
    # The parent's heartbeat opened database connections before this child was forked: sharing
    # their sockets would corrupt both sides, so the child starts with a pool of its own.
    db.engine().dispose(close=False)
    name = os.environ.get(ENGINE_ENV)
    if not name:
        return
    started = time.perf_counter()
    _engine = engines.create(name, get_settings())
    _engine.load()
    log.info("engine %s ready in %.1f s (pid %d)", name, time.perf_counter() - started, os.getpid())


@lru_cache
def engine_version() -> str:
    return _engine.capabilities().model_version


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Run:
    """One attempt of one job on this worker's engine."""

    attempt_id: int
    request: SynthesisRequest
    key: str
    source: str
    format: str
    rate: int | None  # the output rate asked for
    sample: tuple[str, object] | None  # (object key, Voice) of a cloned voice's sample
    move_on: str | None = None  # set when the job must leave this engine without trying it


@app.task(name="voicefarm.synthesize", bind=True)
def synthesize(self, job_id: str) -> None:
    if _engine is None:
        raise RuntimeError("this worker has no engine; start it with `voicefarm worker --engine NAME`")
    run = begin(job_id, _engine.name)
    if run is None:
        return
    error = run.move_on
    if error is None:
        try:
            cached, seconds = attempt(run)
        except Exception as e:  # any failure, the soft time limit included, moves the job on
            error = f"{type(e).__name__}: {e}"
            log.warning("job %s failed on %s: %s", job_id, _engine.name, error)
    if error is None:
        if finish(job_id, run.attempt_id, audio=cached, seconds=seconds):
            get_cache().put(cached)
        return
    following = reroute(job_id, run.attempt_id, error)
    if following is not None:
        raise self.retry(countdown=0, max_retries=None, **route_options(following, get_settings()))


@app.task(name="voicefarm.lost")
def lost(request, exc, traceback) -> None:
    """Errback of a run that ended without reporting (hard time limit, an error outside the
    engine): record it and move the job on. Celery calls it in the process that saw the failure."""
    job_id = request.args[0]
    engine = (request.delivery_info or {}).get("routing_key", "").removeprefix("tts.")
    following = reroute(job_id, None, f"{type(exc).__name__}: {exc}", engine=engine)
    if following is not None:
        with db.session() as s:
            in_batch = s.get(Job, job_id).batch_id is not None
        enqueue(job_id, following, get_settings(), batch=in_batch)


def begin(job_id: str, engine: str) -> Run | None:
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
            if a.outcome == Status.running.value:  # redelivered: the worker of that attempt died
                a.outcome, a.finished_at = LOST, now
                a.error = "the worker died during synthesis (killed, crashed or out of memory)"
        lost_here = sum(a.outcome == LOST and a.engine == engine for a in job.attempts)
        job.status = Status.running.value
        job.started_at = job.started_at or now
        attempt = Attempt(job_id=job.id, engine=engine, worker=worker_name())
        s.add(attempt)
        s.flush()
        voice_id = job.route["voice"]
        cloned = s.get(ClonedVoice, voice_id) if job.route["cloned"] else None
        return Run(
            attempt_id=attempt.id,
            request=SynthesisRequest(text=job.text, voice=voice_id, language=job.language, speed=job.speed),
            key=job.content_key,
            source=job.route["source"],
            format=job.format,
            rate=job.output_rate,
            sample=(cloned.sample_key, as_voice(cloned, settings)) if cloned else None,
            move_on=(f"workers died {lost_here} times on this job; moving on"
                     if lost_here > settings.max_lost_per_engine else None),
        )


def attempt(run: Run) -> tuple[CachedAudio, float]:
    """Synthesize, gate, encode and store; returns what to record and the synthesis time."""
    store = get_store()
    request = run.request
    if run.sample is not None:
        sample_key, voice = run.sample
        request = replace(request, reference=reference.load(store.get(sample_key)),
                          reference_key=latents_key(voice, _engine.name, engine_version()))
    started = time.perf_counter()
    audio = _engine.synthesize(request)
    seconds = time.perf_counter() - started
    quality.check(audio, request.text, request.speed, get_settings().quality_max_wer, request.language)
    object_key = f"audio/{run.key}.{run.format}"
    data, rate = encode(audio, run.format, run.rate)
    store.put(object_key, data, content_type(run.format))
    master = data if (run.format, rate) == (MASTER, audio.sample_rate) else encode(audio, MASTER)[0]
    store.put(renditions.master_key(run.source), master, content_type(MASTER))
    log.info("%s: %.2f s of audio in %.2f s (RTF %.3f)", object_key, audio.duration, seconds,
             seconds / audio.duration if audio.duration else math.nan)
    cached = CachedAudio(run.key, object_key, store.url(object_key), _engine.name, run.format, audio.duration, rate)
    return cached, seconds


def reroute(job_id: str, attempt_id: int | None, error: str, engine: str | None = None) -> str | None:
    """Close the failed attempt (given, or the open one on `engine`), count it against the
    engine's breaker, and move the job to the next engine of its chain that has a live worker
    and a closed breaker; returns that engine, or None when the job failed
    for good, follows another job, or has already moved on."""
    with db.session() as s:
        job = s.get(Job, job_id, with_for_update=True)
        if job is None or job.status not in ACTIVE or (engine is not None and job.engine != engine):
            return None
        now = utcnow()
        failed = [a for a in job.attempts if a.id == attempt_id
                  or (attempt_id is None and a.outcome == Status.running.value and a.engine == engine)]
        if not failed:
            # Celery may report one death twice (the hard limit, then the reaped child): the
            # first report already moved the job on.
            return None
        settings = get_settings()
        for a in failed:
            a.outcome, a.error, a.finished_at = Status.failed.value, f"{a.engine}: {error}", now
            breaker.failed(s, a.engine, error, settings)
        position = [r["engine"] for r in job.chain].index(job.engine)
        where = available(s, settings)
        following = next((r for r in job.chain[position + 1:] if where.usable(s, r["engine"])), None)
        if following is None:
            errors = "; ".join(a.error or a.outcome for a in job.attempts if a.outcome != Status.succeeded.value)
            settle(s, job, {"status": Status.failed.value, "finished_at": now,
                            "error": f"every engine failed: {errors}"})
            return None
        for a in failed:
            a.rerouted_to = following["engine"]
        job.status = Status.queued.value
        return move(s, job, following)


def move(s: Session, job: Job, route: dict) -> str | None:
    """Point the job at another route. If an identical job is already in flight there, follow
    it (and bring our followers along) instead of synthesizing the same audio twice."""
    try:
        with s.begin_nested():
            job.engine, job.content_key = route["engine"], route["key"]
        return route["engine"]
    except IntegrityError:
        leader = s.query(Job).filter(Job.content_key == route["key"], Job.leader_id.is_(None),
                                     Job.status.in_(ACTIVE), Job.id != job.id).one()
        job.engine, job.content_key, job.leader_id = route["engine"], route["key"], leader.id
        s.execute(update(Job).where(Job.leader_id == job.id).values(leader_id=leader.id))
        return None


def settle(s: Session, job: Job, outcome: dict) -> None:
    """Write a final outcome on a job and every follower waiting on it; then finish their
    batches and announce their callbacks."""
    followers = s.execute(select(Job.id, Job.batch_id, Job.callback_url)
                          .where(Job.leader_id == job.id, Job.status.in_(ACTIVE))).all()
    for field, value in outcome.items():
        setattr(job, field, value)
    s.execute(update(Job).where(Job.leader_id == job.id, Job.status.in_(ACTIVE))
              .values(**outcome, started_at=job.started_at))
    for job_id, _, callback in [(job.id, job.batch_id, job.callback_url), *followers]:
        if callback:
            webhooks.announce_after_commit(s, "job", job_id)
    s.flush()
    batches.finish_if_done(s, [job.batch_id, *(batch_id for _, batch_id, _ in followers)])


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
        run.outcome, run.finished_at = Status.succeeded.value, now
        breaker.succeeded(s, run.engine)
        renditions.record(s, audio, job.route["source"], job.route["voice"])
        settle(s, job, {"status": Status.succeeded.value, "error": None, "finished_at": now,
                        "synthesis_seconds": seconds, "engine": audio.engine, "object_key": audio.object_key,
                        "duration": audio.duration, "sample_rate": audio.sample_rate})
    return True
