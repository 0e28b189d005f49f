"""The reconciler: the database says which jobs wait; the broker may have lost their messages
(a Redis restart without persistence, a crash between commit and publish). Re-enqueue those,
and never a job whose message still exists or that a worker has just taken."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlalchemy import select

from voicefarm import broker, db
from voicefarm.jobs.batches import sweep
from voicefarm.models import Job, JobStatus, utcnow
from voicefarm.queue import enqueue
from voicefarm.settings import Settings

log = logging.getLogger(__name__)


def orphans(settings: Settings, older_than: float) -> dict[str, tuple[str, bool]]:
    """job id -> (engine, in a batch) for jobs that wait with no message: queued longer than `older_than`, or
    running past any time limit (their worker and their message are both gone)."""
    now = utcnow()
    stuck_before = now - timedelta(seconds=settings.longest_task + settings.longest_task * 2 + 60)
    with db.session() as s:
        waiting = s.scalars(
            select(Job).where(
                Job.leader_id.is_(None),
                Job.status == JobStatus.queued.value,
                Job.created_at <= now - timedelta(seconds=older_than),
            )
        ).all()
        running = s.scalars(
            select(Job).where(
                Job.leader_id.is_(None), Job.status == JobStatus.running.value, Job.started_at <= stuck_before
            )
        ).all()
        candidates = {
            job.id: (job.engine, job.batch_id is not None)
            for job in waiting
            if all(a.finished_at is None or a.finished_at <= now - timedelta(seconds=older_than) for a in job.attempts)
        }
        candidates |= {
            job.id: (job.engine, job.batch_id is not None)
            for job in running
            if all(a.started_at <= stuck_before for a in job.attempts)
        }
    present = broker.for_settings(settings).message_ids()
    return {job_id: route for job_id, route in candidates.items() if job_id not in present}


def reconcile(settings: Settings, older_than: float | None = None, settle_seconds: float = 1.0) -> list[str]:
    """Re-enqueue orphaned jobs; returns their ids. A job is re-sent only if it is an orphan twice,
    `settle_seconds` apart: a message a worker had just taken is by then a running job."""
    older_than = settings.reconcile_after_seconds if older_than is None else older_than
    with db.session() as s:
        sweep(s)
    first = orphans(settings, older_than)
    if not first:
        return []
    time.sleep(settle_seconds)
    again = orphans(settings, older_than)
    resent = [job_id for job_id in first if job_id in again]
    for job_id, (engine, in_batch) in again.items():
        if job_id in resent:
            enqueue(job_id, engine, settings, batch=in_batch)
    if resent:
        log.warning("re-enqueued %d job(s) whose broker message was lost: %s", len(resent), ", ".join(resent))
    return resent
