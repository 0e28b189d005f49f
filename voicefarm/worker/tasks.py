"""The Celery tasks: a thin adapter between the broker and the job lifecycle.

A worker process serves one engine (`voicefarm worker --engine NAME`) and takes one job at a
time from the engine's queue. A run that fails (an exception, the soft time limit, the quality
gate) moves the job to the next engine of its chain; a run that dies without reporting (hard
time limit) does the same from the `lost` errback. A run whose job was canceled stops at its
next piece of audio and just ends (voicefarm.jobs.cancel). A run whose pool process was killed is
redelivered by the broker and finds its attempt open; one whose whole worker died, or whose
message never came back, is sent again by the reconciler (voicefarm.ops.reconcile). Each step that needs the
database, the store or the broker rides out their outages (voicefarm.store.outages): an outage
never moves a job down its chain.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task

from voicefarm.dispatch import names
from voicefarm.errors import JobCanceled
from voicefarm.jobs.lifecycle import begin, finish, reroute
from voicefarm.library import timestamps
from voicefarm.library.cache import get_cache
from voicefarm.store.outages import best_effort, is_outage, ride_out
from voicefarm.worker.run import attempt, ended, engine, engine_slot, send, worker_name

log = logging.getLogger(__name__)


@shared_task(name=names.SYNTHESIZE, bind=True)
def synthesize(self: Task, job_id: str, dispatch: int | None = None) -> None:
    name = engine().name
    with engine_slot(self) as turn:
        run = ride_out(lambda: begin(job_id, name, worker_name(), dispatch), f"job {job_id}: begin")
        if run is None:
            return
        error = run.move_on
        if error is None:
            try:
                cached, seconds, words = attempt(run, turn)
            except JobCanceled:
                log.info("job %s: canceled while it ran on %s; taking the next job", job_id, name)
                return
            except Exception as e:  # any failure, the soft time limit included, moves the job on
                if is_outage(e):
                    # Not the engine's failure: the attempt stays open, and once this worker no
                    # longer says it runs the job, the reconciler sends the job again.
                    raise
                error = f"{type(e).__name__}: {e}"
                log.warning("job %s failed on %s: %s", job_id, name, error)
    if error is None:
        if ride_out(
            lambda: finish(job_id, run.attempt_id, audio=cached, seconds=seconds, words=words), f"job {job_id}: finish"
        ):
            best_effort(lambda: get_cache().put(cached), "the URL cache")
            ended(run, "end")
        else:
            ended(run, "failed", "this attempt's result was dropped: the job was sent again or deleted")
        return
    ended(run, "failed", error)
    following = ride_out(lambda: reroute(job_id, run.attempt_id, error), f"job {job_id}: reroute")
    if following is not None:
        send(following)


@shared_task(name=names.LOST)
def lost(request: Any, exc: BaseException, traceback: Any) -> None:
    """Errback of a run that ended without reporting (hard time limit, an error outside the
    engine): record it and move the job on. Celery calls it in the process that saw the failure.
    A run cut short by an outage of the farm's own servers is no engine's failure: its job is
    left to the reconciler, which sends it again."""
    job_id = request.args[0]
    if is_outage(exc):
        log.warning("job %s: its run met an outage (%s); the reconciler will send it again", job_id, exc)
        return
    engine_name = (request.delivery_info or {}).get("routing_key", "").removeprefix(names.ENGINE_QUEUE_PREFIX)
    following = ride_out(
        lambda: reroute(job_id, None, f"{type(exc).__name__}: {exc}", engine=engine_name), f"job {job_id}: reroute"
    )
    if following is not None:
        send(following)


@shared_task(name=names.ALIGN)
def align(source_key: str, text: str, language: str) -> None:
    """Word timestamps of a stored speech, on the aligner's queue (voicefarm.library.timestamps)."""
    timestamps.make(source_key, text, language)
