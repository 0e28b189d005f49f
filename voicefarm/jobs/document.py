"""A document's transitions, beside a job's (`lifecycle`), each one database transaction: fan out
(a worker takes the document and picks the segments to synthesize), begin, finish or fail a
segment, and begin the join. The join finishes and settles through the lifecycle, like any job.

Every segment message carries its document's dispatch number. A document sent again (its
worker died, its message was lost, it moved down its chain) takes the next number, so the
segments and the join of the older dispatch find nothing to do, and the new fan-out sends only
the segments whose audio is not stored yet: recovery repeats no finished segment, and a document
is never spoken in two voices.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from voicefarm.audio.codec import MASTER
from voicefarm.dispatch.app import Message
from voicefarm.dispatch.priorities import priorities
from voicefarm.engines.base import SynthesisRequest
from voicefarm.fleet import breaker
from voicefarm.jobs.keys import content_key
from voicefarm.jobs.lifecycle import Run, reroute, resend, sample
from voicefarm.library import renditions
from voicefarm.library.cache import CachedAudio, get_cache
from voicefarm.settings import get_settings
from voicefarm.store import db
from voicefarm.store.models import ACTIVE, Attempt, Job, JobStatus, Outcome, Rendition, Segment, utcnow
from voicefarm.telemetry import counters

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ready:
    """Segments whose audio is stored, to be heard in the document's live stream: their
    positions, source keys (their masters) and pauses, and the place in the job's chain of the
    engine that spoke them (what the feed names in place of an attempt)."""

    speaker: int
    segments: list[tuple[int, str, float]]


@dataclass(frozen=True)
class FanOut:
    todo: list[int]  # positions of the segments to synthesize, one per distinct speech
    priority: int  # of their messages and the join's
    reused: list[str]  # content keys of the stored segments it reuses
    ready: Ready  # every segment stored already, this dispatch's or an earlier one's


@dataclass(frozen=True)
class Join:
    attempt_id: int
    parts: list[tuple[str, float]]  # each segment's source key (its master) and the pause after it
    key: str
    source: str
    format: str
    rate: int | None
    seconds: float  # the segments' synthesis time, this dispatch
    speaker: int  # as in Ready


def speaker(job: Job, engine: str) -> int:
    return [link.engine for link in job.links].index(engine)


def _ready(job: Job, engine: str, positions: list[int]) -> Ready:
    segments = [job.segments[p] for p in positions]
    return Ready(speaker(job, engine), [(seg.position, seg.sources[engine], seg.pause) for seg in segments])


def segment_key(segment: Segment, engine: str) -> str:
    """The content key of a segment's audio on an engine: a FLAC at the engine's own rate, the
    key a job asking for that text in FLAC would have, so the two share it."""
    return content_key(segment.sources[engine], MASTER, None)


def _current(s: Session, job_id: str, engine: str, dispatch: int) -> Job | None:
    """The document, locked, if this message is for its current dispatch on this engine."""
    job = s.get(Job, job_id, with_for_update=True)
    if job is None or job.status not in ACTIVE or job.engine != engine or job.dispatch != dispatch:
        log.info("document %s: nothing to do for dispatch %d on %s", job_id, dispatch, engine)
        return None
    return job


def fan_out(job_id: str, engine: str, dispatch: int) -> FanOut | None:
    """Mark the document running and each segment done if its audio is stored (a use of that
    audio, which keeps it from expiring); returns what to synthesize, or None when this message
    is stale."""
    settings = get_settings()
    with db.session() as s:
        job = _current(s, job_id, engine, dispatch)
        if job is None:
            return None
        fan = _fan_out(s, job, engine, settings.document_batch_chars)
    with db.session() as s:
        get_cache().used(s, fan.reused)
    return fan


def _fan_out(s: Session, job: Job, engine: str, batch_chars: int) -> FanOut:
    job.status = JobStatus.running.value
    job.started_at = job.started_at or utcnow()
    keys = [segment_key(segment, engine) for segment in job.segments]
    stored = set(s.scalars(select(Rendition.content_key).where(Rendition.content_key.in_(set(keys)))))
    todo: dict[str, int] = {}
    for segment, key in zip(job.segments, keys, strict=True):
        if key not in stored:
            segment.done, segment.cached, segment.synthesis_seconds = False, False, None
            todo.setdefault(key, segment.position)
        elif not segment.done:  # done on an earlier dispatch, it stays as it was made
            segment.done = segment.cached = True
    big = len(job.text) > batch_chars
    (priority,) = priorities(s, job.tenant_id, 1, batch=big or job.batch_id is not None)
    ready = _ready(job, engine, [segment.position for segment in job.segments if segment.done])
    return FanOut(list(todo.values()), priority, sorted(stored), ready)


def begin_segment(job_id: str, engine: str, worker: str, dispatch: int, position: int) -> Run | Ready | None:
    """Open an attempt on one segment; None when the message is stale, and the segments now
    ready when its audio was stored meanwhile (by another document saying the same)."""
    with db.session() as s:
        job = _current(s, job_id, engine, dispatch)
        segment = s.get(Segment, (job_id, position))
        if job is None or segment is None:
            return None
        key = segment_key(segment, engine)
        if s.get(Rendition, key) is not None:
            return _ready(job, engine, _done(job, key, engine, cached=True))
        now = utcnow()
        for a in job.attempts:
            if a.segment == position and a.outcome == Outcome.running:  # redelivered: its worker died
                a.outcome, a.finished_at = Outcome.lost.value, now
                a.error = "the worker died during synthesis (killed, crashed or out of memory)"
                counters.on_commit(s, counters.attempts.labels(a.engine, Outcome.lost.value).inc)
        attempt = Attempt(job_id=job_id, engine=engine, worker=worker, segment=position)
        s.add(attempt)
        s.flush()
        link = job.link
        return Run(
            job_id=job_id,
            attempt_id=attempt.id,
            request=SynthesisRequest(text=segment.text, voice=link.voice, language=job.language, speed=job.speed),
            key=key,
            source=segment.sources[engine],
            format=MASTER,
            rate=None,
            sample=sample(s, link),
        )


def finish_segment(
    job_id: str, dispatch: int, attempt_id: int, source: str, audio: CachedAudio, seconds: float
) -> Ready | None:
    """Record a segment's stored audio (kept and shared even when its document has moved on
    since) and, on the current dispatch, every segment of the document that says the same:
    those are ready to be heard."""
    with db.session() as s:
        job = s.get(Job, job_id, with_for_update=True)
        attempt = s.get(Attempt, attempt_id)
        if job is None or attempt is None:  # the voice was purged while it ran
            return None
        if attempt.outcome == Outcome.running:
            attempt.outcome, attempt.finished_at = Outcome.succeeded.value, utcnow()
            breaker.succeeded(s, attempt.engine)
            counters.on_commit(s, counters.attempts.labels(attempt.engine, Outcome.succeeded.value).inc)
        link = next(link for link in job.links if link.engine == attempt.engine)
        renditions.record(s, audio, source, link.voice)
        s.flush()
        if job.status in ACTIVE and job.dispatch == dispatch and job.engine == attempt.engine:
            done = _done(job, audio.content_key, attempt.engine, cached=False, seconds=seconds)
            return _ready(job, attempt.engine, done)
        return None


def _done(job: Job, key: str, engine: str, *, cached: bool, seconds: float | None = None) -> list[int]:
    """Mark done the segments that say what `key` holds; their positions."""
    done = []
    for segment in job.segments:
        if not segment.done and segment_key(segment, engine) == key:
            segment.done, segment.cached, segment.synthesis_seconds = True, cached, seconds
            seconds = None  # synthesized once, however many segments say it
            done.append(segment.position)
    return done


def fail_segment(job_id: str, dispatch: int, attempt_id: int, error: str, *, last: bool) -> Message | None:
    """Close a segment's failed attempt. The `last` try of a segment on the current dispatch
    moves the whole document down its chain: returns the message that sends it there."""
    with db.session() as s:
        job = s.get(Job, job_id, with_for_update=True)
        attempt = s.get(Attempt, attempt_id)
        if job is None or attempt is None or attempt.outcome != Outcome.running:
            return None
        engine, position = attempt.engine, attempt.segment
        current = job.status in ACTIVE and job.dispatch == dispatch and job.engine == engine
        if not (last and current):  # tried again on this engine, or its document already moved on
            attempt.outcome, attempt.error, attempt.finished_at = Outcome.failed.value, f"{engine}: {error}", utcnow()
            breaker.failed(s, engine, error, get_settings())
            counters.on_commit(s, counters.attempts.labels(engine, Outcome.failed.value).inc)
            return None
    return reroute(job_id, attempt_id, f"segment {position}: {error}", engine=engine)


def begin_join(job_id: str, engine: str, worker: str, dispatch: int) -> Join | Message | None:
    """Open the join's attempt once every segment is done; None when the message is stale. A
    join that finds a segment missing (a duplicate delivery counted in the chord) sends the
    document again: the new fan-out synthesizes only what is missing."""
    with db.session() as s:
        job = _current(s, job_id, engine, dispatch)
        if job is None:
            return None
        if not all(segment.done for segment in job.segments):
            log.warning("document %s: joined with segments missing; sending it again", job_id)
            return resend(s, job)
        attempt = Attempt(job_id=job_id, engine=engine, worker=worker)
        s.add(attempt)
        s.flush()
        return Join(
            attempt_id=attempt.id,
            parts=[(segment.sources[engine], segment.pause) for segment in job.segments],
            key=job.content_key,
            source=job.link.source,
            format=job.format,
            rate=job.output_rate,
            seconds=sum(segment.synthesis_seconds or 0.0 for segment in job.segments),
            speaker=speaker(job, engine),
        )
