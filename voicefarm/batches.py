"""Batches: many jobs submitted at once for pre-generation. Items already cached finish at once,
duplicates share one synthesis (as identical jobs always do), and batch jobs wait behind
interactive ones on every queue."""

from __future__ import annotations

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from voicefarm import jobs, webhooks
from voicefarm.breaker import Available
from voicefarm.cache import AudioCache, CachedAudio
from voicefarm.models import ACTIVE, Batch, Job, utcnow
from voicefarm.storage import Store


def create(session: Session, cache: AudioCache, store: Store, tenant_id: str, plans: list[jobs.Plan], *,
           live: Available, callback_url: str | None) -> tuple[Batch, list[Job]]:
    """Record the batch and its jobs; returns it and the jobs the caller must enqueue."""
    batch = Batch(tenant_id=tenant_id, total=len(plans), callback_url=callback_url)
    session.add(batch)
    session.commit()
    to_enqueue = []
    for index, plan in enumerate(plans):
        result, new = jobs.submit(session, cache, store, tenant_id, plan, live=live, batch_id=batch.id,
                                  batch_index=index)
        if isinstance(result, CachedAudio):
            session.add(jobs.finished_from_cache(tenant_id, plan, result, batch_id=batch.id, batch_index=index))
            session.commit()
        elif new:
            to_enqueue.append(result)
    finish_if_done(session, [batch.id])
    session.commit()
    return batch, to_enqueue


def finish_if_done(session: Session, batch_ids: list[str]) -> None:
    """Mark batches with no job left in flight as done, and announce them (after commit)."""
    for batch_id in set(filter(None, batch_ids)):
        in_flight = exists(select(Job.id).where(Job.batch_id == batch_id, Job.status.in_(ACTIVE)))
        done = session.execute(update(Batch).where(Batch.id == batch_id, Batch.status == "running", ~in_flight)
                               .values(status="done", finished_at=utcnow()).returning(Batch.callback_url)).first()
        if done is not None and done[0]:
            webhooks.announce_after_commit(session, "batch", batch_id)


def sweep(session: Session) -> None:
    """Batches whose last two jobs finished at the same moment can each have seen the other still
    running: the reconciler finishes them here."""
    running = session.scalars(select(Batch.id).where(Batch.status == "running")).all()
    finish_if_done(session, list(running))
    session.commit()
