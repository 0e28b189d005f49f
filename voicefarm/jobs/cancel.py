"""Cancel: a job, or every job of a batch, that its owner no longer wants.

A queued job never runs: its message finds it canceled (lifecycle.begin). A running one stops at
its next piece of audio: its worker looks at its attempt between pieces (voicefarm.worker.run),
finds it canceled, drops the run and takes its next job. Its listeners are told at once through
its feed. Audio already stored stays valid: canceling only stops the spending.

A synthesis that other jobs follow (the same speech, asked for in another request) goes on while
any of them still wants it: the canceled job shows as canceled (`Job.shown_status`), and its
synthesis ends for its followers as it would have. Once the last of them is canceled too, it stops.

Locks are taken leader first, as settle takes them (the leader's row, then its followers'), so a
cancel never deadlocks with a finishing synthesis.
"""

from __future__ import annotations

import logging
from functools import partial

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from voicefarm.jobs import notify
from voicefarm.jobs.batches import finish_if_done
from voicefarm.jobs.feeds import Entry, get_feed
from voicefarm.store import db
from voicefarm.store.models import ACTIVE, Attempt, Job, JobStatus, Outcome, utcnow
from voicefarm.store.outages import best_effort
from voicefarm.telemetry import counters

log = logging.getLogger(__name__)

CANCELED = "canceled by its owner"


def cancel_job(job_id: str) -> None:
    """Cancel the job unless it has ended; a job already canceled or ended is left as it is."""
    with db.session() as s:
        told = _cancel(s, job_id)
    _tell(told)


def cancel_batch(batch_id: str) -> None:
    """Cancel every job of the batch that has not ended; the batch is done once none runs."""
    told: list[tuple[str, str]] = []
    with db.session() as s:
        ids = s.scalars(select(Job.id).where(Job.batch_id == batch_id, Job.status.in_(ACTIVE))).all()
    for job_id in ids:  # one transaction a job: a batch of thousands holds no lock for long
        with db.session() as s:
            told += _cancel(s, job_id)
    _tell(told)


def _cancel(s: Session, job_id: str) -> list[tuple[str, str]]:
    """One job's cancel, committed; the (feed, job) pairs whose listeners must be told."""
    found = s.get(Job, job_id)
    if found is None:
        return []
    leader = s.get(Job, found.leader_id, with_for_update=True) if found.leader_id else None
    job = s.get(Job, job_id, with_for_update=True, populate_existing=True)
    assert job is not None, "a job is deleted only with its tenant or voice"
    if leader is not None and job.leader_id != leader.id:
        s.rollback()  # its leader moved on and handed it to another since we looked: look again
        return _cancel(s, job_id)
    if job.status not in ACTIVE or job.canceled_at is not None:
        return []
    now = utcnow()
    job.canceled_at = now
    told = [(job.leader_id or job.id, job.id)]
    if leader is None and _followed(s, job):
        # Others want this synthesis: it goes on for them, and settle marks this job canceled.
        log.info("job %s canceled; its synthesis goes on for the jobs that follow it", job.id)
        if job.callback_url:
            notify.announce_after_commit(s, "job", job.id)
    else:
        _stop(s, job)
        if leader is not None and leader.canceled_at and leader.status in ACTIVE and not _followed(s, leader):
            _stop(s, leader)  # its last follower gone, the synthesis its owner canceled stops
            told.append((leader.id, leader.id))
    s.commit()
    return told


def _followed(s: Session, job: Job) -> bool:
    return bool(s.scalar(select(exists().where(Job.leader_id == job.id, Job.status.in_(ACTIVE)))))


def _stop(s: Session, job: Job) -> None:
    """End the job as canceled, and its running attempts, which its workers see between pieces."""
    now = utcnow()
    for a in job.attempts:
        if a.outcome == Outcome.running:
            a.outcome, a.finished_at, a.error = Outcome.canceled.value, now, f"{a.engine}: its job was {CANCELED}"
            counters.on_commit(s, counters.attempts.labels(a.engine, Outcome.canceled.value).inc)
    job.status, job.finished_at, job.error = JobStatus.canceled.value, now, CANCELED
    counters.on_commit(s, counters.jobs_finished.labels(job.engine, JobStatus.canceled.value).inc)
    if job.callback_url:
        notify.announce_after_commit(s, "job", job.id)
    s.flush()
    finish_if_done(s, [job.batch_id])


def _tell(told: list[tuple[str, str]]) -> None:
    """Stop the listeners of each canceled job now, not at their next look at its state."""
    feed = get_feed()
    for source, job_id in told:
        best_effort(partial(feed.append, source, Entry(0, "", "canceled", job=job_id)), f"job {job_id}'s live feed")


def attempt_canceled(attempt_id: int) -> bool:
    """Whether a running attempt's job was canceled under it: its worker asks between pieces."""
    with db.session() as s:
        return s.scalar(select(Attempt.outcome).where(Attempt.id == attempt_id)) == Outcome.canceled
