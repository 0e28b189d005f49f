"""A batch's state is its jobs' states: it is done once none of them is in flight."""

from __future__ import annotations

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from voicefarm.jobs import notify
from voicefarm.store.models import ACTIVE, Batch, BatchStatus, Job, utcnow


def finish_if_done(session: Session, batch_ids: list[str | None]) -> None:
    """Mark batches with no job left in flight as done, and announce them (after commit)."""
    for batch_id in set(filter(None, batch_ids)):
        in_flight = exists(select(Job.id).where(Job.batch_id == batch_id, Job.status.in_(ACTIVE)))
        done = session.execute(
            update(Batch)
            .where(Batch.id == batch_id, Batch.status == BatchStatus.running, ~in_flight)
            .values(status=BatchStatus.done.value, finished_at=utcnow())
            .returning(Batch.callback_url)
        ).first()
        if done is not None and done[0]:
            notify.announce_after_commit(session, "batch", batch_id)


def sweep(session: Session) -> None:
    """Batches whose last two jobs finished at the same moment can each have seen the other still
    running: the reconciler finishes them here."""
    running = session.scalars(select(Batch.id).where(Batch.status == BatchStatus.running)).all()
    finish_if_done(session, list(running))
    session.commit()
