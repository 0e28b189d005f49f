"""The reconciler: the database says which jobs wait and which run where; the broker and the
workers may disagree. Two repairs, each sending the job again with a new dispatch number, so a
stale copy of its old message finds nothing to do:

- a running job whose worker stopped beating (killed, crashed, its host gone) is sent again at
  once, rather than after the broker's visibility timeout (minutes) gives its message back; so
  is one whose worker beats on without holding the job any more (each beat lists the tasks its
  worker holds) while the broker holds no message of it;
- a job whose message the broker lost (a Redis restart without persistence, a crash between
  commit and publish) is sent again, but never one whose message still exists or that a worker
  has just taken.

`voicefarm reconcile --every` runs these passes in keep_reconciling, which no failed pass ends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import timedelta

from prometheus_client import Counter
from sqlalchemy import select

from voicefarm.dispatch import brokers
from voicefarm.dispatch.app import Message, enqueue, job_of
from voicefarm.fleet.heartbeat import live_beats, owner
from voicefarm.jobs.batches import sweep
from voicefarm.jobs.lifecycle import abandon, requeue
from voicefarm.settings import Settings
from voicefarm.store import db
from voicefarm.store.models import Job, JobStatus, Outcome, Worker, utcnow
from voicefarm.telemetry import counters

log = logging.getLogger(__name__)

Attempted = tuple[str, int, str]  # (job id, attempt id, why it is given up)


def unrun_attempts(settings: Settings) -> tuple[list[Attempted], list[Attempted]]:
    """Open attempts that no live worker runs: (dead, dropped). A dead one's worker stopped
    beating; a dropped one's worker beats on without holding its job (its pool process was
    killed, or its run gave up during an outage)."""
    cutoff = utcnow() - timedelta(seconds=settings.worker_dead_after_seconds)
    dead, dropped = [], []
    with db.session() as s:
        beats = live_beats(s, settings)
        running = s.scalars(select(Job).where(Job.status == JobStatus.running.value, Job.leader_id.is_(None))).all()
        for job in running:
            for a in job.attempts:
                if a.outcome != Outcome.running or (name := owner(a.worker)) is None:
                    continue
                worker = beats.get(name)
                if worker is None:
                    # An attempt younger than the cutoff began after its worker's last beat we can judge.
                    if a.started_at <= cutoff:
                        dead.append((job.id, a.id, f"the worker {name} stopped beating during synthesis"))
                # A beat after the attempt began was taken while the worker held its task.
                elif worker.jobs is not None and a.started_at < worker.last_seen and job.id not in held(worker):
                    dropped.append((job.id, a.id, f"the worker {name} no longer holds the job"))
    return dead, dropped


def unheld(settings: Settings) -> set[Attempted]:
    """Dropped attempts (unrun_attempts) whose job has no message in the broker either: none
    will run it again. A pool process killed under its job gives the message back, and the job
    runs again from it."""
    _, dropped = unrun_attempts(settings)
    if not dropped:
        return set()
    # Read after the beats: a message on its way back to a queue is held, or queued, by then.
    queued = {job_of(task_id) for task_id in brokers.for_settings(settings).message_ids()}
    return {attempt for attempt in dropped if attempt[0] not in queued}


def held(worker: Worker) -> set[str]:
    """The jobs whose tasks (a job's own, or a document's parts) the worker held at its last beat."""
    return {job_of(task_id) for task_id in worker.jobs or []}


def send(found: Iterable[Message | None], counter: Counter, settings: Settings, why: str) -> list[str]:
    """Enqueue the messages found (None: that job needs none after all); count and log them."""
    sent = []
    for message in found:
        if message is not None:
            enqueue(message, settings)
            counter.labels(message.engine).inc()
            sent.append(message.job_id)
    if sent:
        log.warning("sent again %d job(s) %s: %s", len(sent), why, ", ".join(sent))
    return sent


def recover(settings: Settings, settle_seconds: float = 1.0) -> list[str]:
    """Send again the jobs whose attempts no live worker runs; returns their ids. A dropped
    attempt must be unheld twice, `settle_seconds` apart: a message a worker has just taken
    from the broker is in neither place for a moment, and in the worker's next beat."""
    dead, _ = unrun_attempts(settings)
    dropped = unheld(settings)
    if dropped:
        time.sleep(settle_seconds)
        dropped &= unheld(settings)
    found = (abandon(job_id, attempt, why) for job_id, attempt, why in [*dead, *sorted(dropped)])
    return send(found, counters.recovered, settings, "that no live worker runs")


def orphans(settings: Settings, older_than: float) -> set[str]:
    """Jobs that wait with no message: queued longer than `older_than`, or running past any
    time limit (their worker and their message are both gone)."""
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
            job.id
            for job in waiting
            if all(a.finished_at is None or a.finished_at <= now - timedelta(seconds=older_than) for a in job.attempts)
        }
        candidates |= {job.id for job in running if all(a.started_at <= stuck_before for a in job.attempts)}
        held_live = {task_id for worker in live_beats(s, settings).values() for task_id in worker.jobs or []}
    broker = brokers.for_settings(settings)
    delivered = broker.delivered_ids()
    # A message delivered to no live worker went with a worker that died before it began the
    # job (killed between taking the message and its first transaction): the broker would give
    # it back only after its visibility timeout, minutes away. Any other message is the job's.
    # A document waiting for its segments (at batch priority, behind a long queue) is no orphan.
    kept = (broker.message_ids() - delivered) | (delivered & held_live)
    return candidates - {job_of(task_id) for task_id in kept}


def reconcile(settings: Settings, older_than: float | None = None, settle_seconds: float = 1.0) -> list[str]:
    """Send again jobs whose worker died and jobs whose message was lost; returns their ids. A
    job is re-sent for a lost message only if it is an orphan twice, `settle_seconds` apart: a
    message a worker had just taken is by then a running job."""
    older_than = settings.reconcile_after_seconds if older_than is None else older_than
    if brokers.for_settings(settings).emptied():
        # Every message is gone at once: any queued job may be an orphan, however young.
        older_than = 0
    with db.session() as s:
        sweep(s)
    resent = recover(settings, settle_seconds)
    first = orphans(settings, older_than)
    if not first:
        return resent
    # A worker lists a message it has just taken at its next beat: the second look comes after it.
    time.sleep(max(settle_seconds, settings.heartbeat_seconds))
    found = (requeue(job_id) for job_id in first & orphans(settings, older_than))
    return resent + send(found, counters.reconciled, settings, "whose broker message was lost")


# Seconds before the pass after a failed one: at first, and at most (unless the period is longer).
RETRY_FIRST, RETRY_LONGEST = 1.0, 60.0


def keep_reconciling(one_pass: Callable[[], object], every: float, stop: threading.Event) -> None:
    """Run `one_pass` every `every` seconds until `stop` is set. A pass that raises (Redis or
    PostgreSQL down) is logged and ends nothing: the next one comes after a wait that doubles
    with each failure in a row, so an outage makes no hot loop, and is back to `every` after a
    success. Each success sets the gauge of the last one, which an alert watches."""
    failures = 0
    while not stop.is_set():
        try:
            one_pass()
        except Exception as e:
            failures += 1
            wait = min(max(every, RETRY_FIRST) * 2 ** (failures - 1), max(every, RETRY_LONGEST))
            # The traceback once per outage: the same one every round would bury everything else.
            log.warning(
                "reconcile pass failed (%d in a row), next in %g s: %s", failures, wait, e, exc_info=failures == 1
            )
        else:
            failures, wait = 0, every
            counters.reconciled_at.set_to_current_time()
        stop.wait(wait)
