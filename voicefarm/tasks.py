"""The synthesis task: what a worker does with one job, top to bottom.

A worker process serves one engine (`voicefarm worker --engine NAME`), loads its model once when
the process starts, and then takes one job at a time from the engine's queue.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from dataclasses import replace
from functools import lru_cache

import numpy as np
from celery import signals
from sqlalchemy import update

from voicefarm import db, engines, reference
from voicefarm.audio import content_type, encode
from voicefarm.cache import CachedAudio, get_cache
from voicefarm.engines.base import Audio, Engine, SynthesisRequest
from voicefarm.models import ACTIVE, Attempt, ClonedVoice, Job, Rendition, Status, utcnow
from voicefarm.queue import app
from voicefarm.settings import get_settings
from voicefarm.storage import get_store
from voicefarm.voices import as_voice, latents_key

log = logging.getLogger(__name__)

ENGINE_ENV = "VOICEFARM_WORKER_ENGINE"
_engine: Engine | None = None


@signals.worker_process_init.connect
def load_engine(**_: object) -> None:
    """Load the model in the process that will use it, before it takes a job."""
    global _engine
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


def check_audio(audio: Audio) -> None:
    """Refuse output no one should be served."""
    if audio.samples.size == 0:
        raise ValueError("engine returned no audio")
    if not np.isfinite(audio.samples).all():
        raise ValueError("engine returned NaN or infinite samples")


@app.task(name="voicefarm.synthesize")
def synthesize(job_id: str) -> None:
    if _engine is None:
        raise RuntimeError(f"this worker has no engine; start it with `voicefarm worker --engine NAME`")
    with db.session() as s:
        job = s.get(Job, job_id, with_for_update=True)
        if job is None or job.status not in ACTIVE:
            # Late acks mean a message can come back after its job finished; doing it again
            # would be a second synthesis of the same job.
            log.info("job %s: nothing to do (%s)", job_id, job.status if job else "no such job")
            return
        job.status = Status.running.value
        job.started_at = job.started_at or utcnow()
        attempt = Attempt(job_id=job.id, engine=_engine.name, worker=worker_name())
        s.add(attempt)
        s.flush()
        attempt_id = attempt.id
        key, fmt, voice_id = job.content_key, job.format, job.route["voice"]
        cloned = s.get(ClonedVoice, voice_id) if job.route["cloned"] else None
        sample = (cloned.sample_key, as_voice(cloned, get_settings())) if cloned else None
        request = SynthesisRequest(text=job.text, voice=voice_id, language=job.language, speed=job.speed)

    try:
        store = get_store()
        if sample is not None:
            sample_key, voice = sample
            request = replace(request, reference=reference.load(store.get(sample_key)),
                              reference_key=latents_key(voice, _engine.name, engine_version()))
        started = time.perf_counter()
        audio = _engine.synthesize(request)
        seconds = time.perf_counter() - started
        check_audio(audio)
        object_key = f"audio/{key}.{fmt}"
        store.put(object_key, encode(audio, fmt), content_type(fmt))
    except BaseException as e:
        finish(job_id, attempt_id, error=f"{_engine.name}: {type(e).__name__}: {e}")
        raise

    cached = CachedAudio(key, object_key, store.url(object_key), _engine.name, fmt, audio.duration, audio.sample_rate)
    if finish(job_id, attempt_id, audio=cached, seconds=seconds):
        get_cache().put(cached)
    log.info("job %s: %.2f s of audio in %.2f s (RTF %.3f)", job_id, audio.duration, seconds,
             seconds / audio.duration if audio.duration else math.nan)


def finish(job_id: str, attempt_id: int, *, audio: CachedAudio | None = None, seconds: float | None = None,
           error: str | None = None) -> bool:
    """Record the outcome on the attempt, the job, every follower waiting on it and, on success,
    the rendition's durable record: one transaction, so no reader sees half of it."""
    now = utcnow()
    status = Status.succeeded.value if audio else Status.failed.value
    outcome: dict[str, object] = {"status": status, "error": error, "finished_at": now, "synthesis_seconds": seconds}
    if audio:
        outcome.update(engine=audio.engine, object_key=audio.object_key, duration=audio.duration,
                       sample_rate=audio.sample_rate)
    with db.session() as s:
        job = s.get(Job, job_id)
        if job is None:
            # Its voice was deleted while it ran: keep nothing made from the purged voice.
            if audio:
                get_store().delete(audio.object_key)
            return False
        attempt = s.get(Attempt, attempt_id)
        attempt.outcome, attempt.error, attempt.finished_at = status, error, now
        for field, value in outcome.items():
            setattr(job, field, value)
        if audio:
            s.merge(Rendition(content_key=audio.content_key, object_key=audio.object_key, url=audio.url,
                              engine=audio.engine, voice=job.route["voice"], format=audio.format,
                              duration=audio.duration, sample_rate=audio.sample_rate))
        s.execute(
            update(Job)
            .where(Job.leader_id == job_id, Job.status.in_(ACTIVE))
            .values(**outcome, started_at=job.started_at)
        )
    return True
