"""The Celery tasks: a thin adapter between the broker and the job lifecycle.

A worker process serves one engine (`voicefarm worker --engine NAME`) and takes one job at a
time from the engine's queue. A run that fails (an exception, the soft time limit, the quality
gate) moves the job to the next engine of its chain with Celery's own retry onto that engine's
queue; a run that dies without reporting (hard time limit) does the same from the `lost`
errback. A run whose pool process was killed is redelivered by the broker and finds its attempt
open; one whose whole worker died is sent again by the reconciler (voicefarm.ops.reconcile).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task

from voicefarm.dispatch import names
from voicefarm.dispatch.app import enqueue, run_options
from voicefarm.jobs.lifecycle import begin, finish, reroute
from voicefarm.library import timestamps
from voicefarm.library.cache import get_cache
from voicefarm.settings import get_settings
from voicefarm.worker.run import attempt, ended, engine, engine_slot, worker_name

log = logging.getLogger(__name__)


@shared_task(name=names.SYNTHESIZE, bind=True)
def synthesize(self: Task, job_id: str, dispatch: int | None = None) -> None:
    name = engine().name
    with engine_slot(self) as slot:
        run = begin(job_id, name, worker_name(), dispatch)
        if run is None:
            return
        error = run.move_on
        if error is None:
            try:
                cached, seconds, words = attempt(run, slot)
            except Exception as e:  # any failure, the soft time limit included, moves the job on
                error = f"{type(e).__name__}: {e}"
                log.warning("job %s failed on %s: %s", job_id, name, error)
    if error is None:
        if finish(job_id, run.attempt_id, audio=cached, seconds=seconds, words=words):
            get_cache().put(cached)
            ended(run, "end")
        else:
            ended(run, "failed", "this attempt's result was dropped: the job was sent again or deleted")
        return
    ended(run, "failed", error)
    following = reroute(job_id, run.attempt_id, error)
    if following is not None:
        raise self.retry(
            args=[job_id, following.dispatch],
            countdown=0,
            max_retries=None,
            priority=following.priority,
            **run_options(following.engine, get_settings()),
        )


@shared_task(name=names.LOST)
def lost(request: Any, exc: BaseException, traceback: Any) -> None:
    """Errback of a run that ended without reporting (hard time limit, an error outside the
    engine): record it and move the job on. Celery calls it in the process that saw the failure."""
    job_id = request.args[0]
    engine_name = (request.delivery_info or {}).get("routing_key", "").removeprefix(names.ENGINE_QUEUE_PREFIX)
    following = reroute(job_id, None, f"{type(exc).__name__}: {exc}", engine=engine_name)
    if following is not None:
        enqueue(following, get_settings())


@shared_task(name=names.ALIGN)
def align(source_key: str, text: str, language: str) -> None:
    """Word timestamps of a stored speech, on the aligner's queue (voicefarm.library.timestamps)."""
    timestamps.make(source_key, text, language)
