"""Recording a planned submission, on a thread (it reads and writes the database): its audio
from the cache or converted from a master, else its job recorded once per content key, then sent
to its engine's queue. A batch is many submissions recorded together."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from voicefarm.dispatch.app import Message, enqueue
from voicefarm.dispatch.priorities import priorities
from voicefarm.errors import Unavailable
from voicefarm.fleet.breaker import Available
from voicefarm.fleet.heartbeat import get_live
from voicefarm.jobs.batches import finish_if_done
from voicefarm.jobs.lifecycle import copy_outcome, in_flight
from voicefarm.jobs.plans import Plan
from voicefarm.library import renditions, timestamps
from voicefarm.library.cache import AudioCache, CachedAudio, get_cache
from voicefarm.settings import Settings, get_settings
from voicefarm.store.models import ACTIVE, Batch, Job, JobStatus, Link, Rendition, Segment, utcnow
from voicefarm.store.objects import Store, get_store
from voicefarm.tenancy import admission


def record_and_send(
    session: Session, policy: admission.Policy, p: Plan, idempotency_key: str | None, callback_url: str | None
) -> Job | CachedAudio:
    """A job request's audio from the cache or a master, or its job: recorded, and sent when
    it leads its own synthesis."""
    result, new = record(
        session,
        get_cache(),
        get_store(),
        policy.tenant_id,
        p,
        live=get_live()(),
        idempotency_key=idempotency_key,
        policy=policy,
        callback_url=callback_url,
    )
    if new:
        assert isinstance(result, Job)
        send(session, [result], get_settings())
    return result


def record_and_send_batch(
    session: Session, policy: admission.Policy, plans: list[Plan], callback_url: str | None
) -> Batch:
    """A batch and its jobs recorded, and the jobs that lead their own synthesis sent."""
    batch, to_send = record_batch(
        session,
        get_cache(),
        get_store(),
        policy.tenant_id,
        plans,
        live=get_live()(),
        callback_url=callback_url,
        policy=policy,
    )
    send(session, to_send, get_settings(), batch=batch)
    return batch


def record(
    session: Session,
    cache: AudioCache,
    store: Store,
    tenant_id: str,
    p: Plan,
    *,
    live: Available,
    idempotency_key: str | None = None,
    policy: admission.Policy | None = None,
    **extra: object,
) -> tuple[Job | CachedAudio, bool]:
    """The cached audio if it exists, else a job row, committed; and whether the caller must
    send it (a new job that leads its own synthesis).

    Audio that exists in another format or rate is converted from its lossless master, not
    synthesized again. The job starts on the first engine of its chain with a live worker and a
    closed breaker (the first engine when there is none: it waits in that queue). A job whose
    identical request is already in flight becomes its follower and is not sent: the leader's
    synthesis completes both. A repeated idempotency key returns the tenant's first job with
    that key. A new job must fit the tenant's limit of active jobs (`policy`; a batch checks all
    its items at once). `extra` sets other job fields (callback_url, batch_id, batch_index).
    Timestamps belong to a job: a hit that asks for them is recorded as a job done from the
    cache, and its speech aligned unless it already is.
    """
    if idempotency_key is not None:
        first = earlier(session, tenant_id, idempotency_key)
        if first is not None:
            return first, False
    hit = cache.lookup(session, p.keys) or convert_master(session, store, cache, p)
    if hit is not None and p.timestamps:
        done = finished_from_cache(tenant_id, p, hit, idempotency_key=idempotency_key, **extra)
        session.add(done)
        timestamps.request(session, done)
        session.commit()
        return done, False
    if hit is not None:
        return hit, False
    if policy is not None:
        admission.check_active(session, policy, 1)
    start = next((i for i, r in enumerate(p.candidates) if live.usable(session, r.engine)), 0)
    fields = job_fields(tenant_id, p, start, idempotency_key=idempotency_key, **extra)
    job = Job(**fields, segments=segment_rows(p))
    session.add(job)
    try:
        session.commit()
        return job, True
    except IntegrityError:  # an identical job is in flight, or a concurrent retry holds the key
        session.rollback()
    if idempotency_key is not None and (first := earlier(session, tenant_id, idempotency_key)) is not None:
        return first, False
    leader = in_flight(session, p.keys[start])
    # A follower is spoken by its leader's segments: it has none of its own.
    job = Job(**fields, leader_id=leader.id if leader else None, segments=[] if leader else segment_rows(p))
    session.add(job)
    session.commit()
    if leader is None:
        return job, True  # the leader finished between our insert and our look: lead ourselves
    # The leader may have finished before this follower was visible to it: settle from its row.
    session.refresh(leader)
    if leader.status == JobStatus.canceled.value:
        # Canceled by its owner before it saw this follower: nothing speaks for it, so it leads.
        job.leader_id, job.segments = None, segment_rows(p)
        session.commit()
        return job, True
    if leader.status not in ACTIVE:
        copy_outcome(leader, job)
        if job.timestamps and job.status == JobStatus.succeeded.value:
            timestamps.request(session, job)
        session.commit()
    return job, False


def job_fields(tenant_id: str, p: Plan, start: int, **extra: object) -> dict[str, object]:
    """A job row's fields for a plan, starting on candidate `start`."""
    chain = [
        Link(r.engine, r.voice.id, r.voice.cloned, key, src)
        for r, key, src in zip(p.candidates, p.keys, p.sources, strict=True)
    ]
    return dict(
        tenant_id=tenant_id,
        text=p.text,
        voice=p.voice.id,
        voice_version=p.voice.version,
        language=p.language,
        quality=p.quality,
        format=p.format,
        speed=p.speed,
        output_rate=p.sample_rate,
        chain=[link.to_json() for link in chain],
        engine=p.candidates[start].engine,
        content_key=p.keys[start],
        timestamps=p.timestamps,
        document=bool(p.pieces),
        **extra,
    )


def segment_rows(p: Plan) -> list[Segment]:
    """A document's segments, to record with its job."""
    return [
        Segment(position=i, text=piece.text, pause=piece.pause, sources=sources)
        for i, (piece, sources) in enumerate(zip(p.pieces, p.piece_sources, strict=True))
    ]


def finished_from_cache(tenant_id: str, p: Plan, hit: CachedAudio, **extra: object) -> Job:
    """A job that needs no synthesis (a batch item already cached): recorded as done."""
    now = utcnow()
    job = Job(**job_fields(tenant_id, p, 0, **extra))
    job.status, job.engine, job.content_key, job.object_key = (
        JobStatus.succeeded.value,
        hit.engine,
        hit.content_key,
        hit.object_key,
    )
    job.duration, job.sample_rate, job.started_at, job.finished_at = hit.duration, hit.sample_rate, now, now
    return job


def convert_master(session: Session, store: Store, cache: AudioCache, p: Plan) -> CachedAudio | None:
    """This request's audio made from a master of the same speech, if one exists."""
    masters = {
        row.source_key: row for row in session.scalars(select(Rendition).where(Rendition.source_key.in_(p.sources)))
    }
    for source, key in zip(p.sources, p.keys, strict=True):
        if source in masters:
            return renditions.convert(session, store, cache, masters[source], key, p.format, p.sample_rate)
    return None


def earlier(session: Session, tenant_id: str, idempotency_key: str) -> Job | None:
    return session.scalars(
        select(Job).where(Job.tenant_id == tenant_id, Job.idempotency_key == idempotency_key)
    ).first()


def record_batch(
    session: Session,
    cache: AudioCache,
    store: Store,
    tenant_id: str,
    plans: list[Plan],
    *,
    live: Available,
    callback_url: str | None,
    policy: admission.Policy,
) -> tuple[Batch, list[Job]]:
    """Record a batch and its jobs; returns it and the jobs the caller must send. Items already
    cached finish at once; duplicates share one synthesis, as identical jobs always do. Every
    item counts against the tenant's limit of active jobs, checked before anything is recorded."""
    admission.check_active(session, policy, len(plans))
    batch = Batch(tenant_id=tenant_id, total=len(plans), callback_url=callback_url)
    session.add(batch)
    session.commit()
    to_send = []
    for index, p in enumerate(plans):
        result, new = record(session, cache, store, tenant_id, p, live=live, batch_id=batch.id, batch_index=index)
        if isinstance(result, CachedAudio):
            session.add(finished_from_cache(tenant_id, p, result, batch_id=batch.id, batch_index=index))
            session.commit()
        elif new:
            to_send.append(result)
    finish_if_done(session, [batch.id])
    session.commit()
    return batch, to_send


def send(session: Session, jobs: list[Job], settings: Settings, *, batch: Batch | None = None) -> None:
    """Put one tenant's new jobs on their engines' queues, at fair priorities (batch jobs behind
    interactive ones). If the broker refuses, nothing of the request is kept: a job no queue
    holds must not exist, so the job, or the whole batch, is deleted and the caller told the
    farm is unavailable."""
    if not jobs:
        return
    levels = priorities(session, jobs[0].tenant_id, len(jobs), batch=batch is not None)
    try:
        for job, priority in zip(jobs, levels, strict=True):
            enqueue(Message.of(job, priority), settings)
    except Exception as e:
        for row in [batch] if batch is not None else jobs:
            session.delete(row)  # a batch's jobs go with it (ON DELETE CASCADE)
        session.commit()
        raise Unavailable(f"broker unavailable, {'batch' if batch is not None else 'job'} not accepted: {e}") from None
