"""The Celery app: one queue per engine (`tts.<engine>`), late acks, one job per worker process."""

from __future__ import annotations

from celery import Celery

from voicefarm import broker
from voicefarm.settings import Settings, get_settings


def make_celery(settings: Settings) -> Celery:
    app = Celery("voicefarm", broker=settings.broker_url, include=["voicefarm.tasks", "voicefarm.webhooks"])
    app.conf.update(
        broker_transport_options=broker.for_settings(settings).transport_options(),
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # the job row is the result
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        task_default_queue="tts.default",
        worker_prefetch_multiplier=1,
        # A child loads its model before it reports ready; the default 4 s is far too short.
        worker_proc_alive_timeout=600,
        worker_send_task_events=True,
        task_send_sent_event=True,
    )
    return app


app = make_celery(get_settings())


def run_options(engine: str, settings: Settings) -> dict[str, object]:
    """Queue and time limits for a job's run on one engine."""
    soft, hard = settings.time_limits(engine)
    return {"queue": broker.queue_name(engine), "soft_time_limit": soft, "time_limit": hard}


INTERACTIVE, BATCH = 0, 9  # Redis serves priority 0 first: batches never starve interactive jobs


def enqueue(job_id: str, engine: str, settings: Settings, *, batch: bool = False) -> None:
    """Send a job to its engine's queue. The task id is the job id (the reconciler looks for it),
    and a run that dies without reporting calls `voicefarm.lost` to move the job on."""
    app.send_task(
        "voicefarm.synthesize",
        args=[job_id],
        task_id=job_id,
        priority=BATCH if batch else INTERACTIVE,
        link_error=app.signature("voicefarm.lost"),
        **run_options(engine, settings),
    )
