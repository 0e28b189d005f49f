"""The Celery app, made from settings: one queue per engine (`tts.<engine>`), late acks, one job
per worker process; and the only functions that send the farm's messages."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from celery import Celery

from voicefarm.dispatch import brokers, names
from voicefarm.settings import Settings, get_settings
from voicefarm.store.models import Job


def make_celery(settings: Settings) -> Celery:
    """A Celery app for these settings; the worker modules' tasks (`shared_task`) bind to it."""
    app = Celery(
        "voicefarm",
        broker=settings.broker_url,
        backend=settings.result_backend,
        include=names.TASK_MODULES,
    )
    if settings.result_backend.startswith("file://"):
        Path(settings.result_backend.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    app.conf.update(
        broker_transport_options=brokers.for_settings(settings).transport_options(),
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # the job row is the result; only a document's segments keep one, for its chord
        result_backend_transport_options={"global_keyprefix": f"{settings.redis_prefix}:"},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        task_default_queue=names.DEFAULT_QUEUE,
        worker_prefetch_multiplier=1,
        # A child loads its model before it reports ready; the default 4 s is far too short.
        worker_proc_alive_timeout=600,
        worker_send_task_events=True,
        task_send_sent_event=True,
    )
    return app


@lru_cache
def get_celery() -> Celery:
    """This process's app, made on first use from its settings: importing the farm makes none."""
    return make_celery(get_settings())


def run_options(engine: str, settings: Settings) -> dict[str, object]:
    """Queue and time limits for a job's run on one engine."""
    soft, hard = settings.time_limits(engine)
    return {"queue": names.engine_queue(engine), "soft_time_limit": soft, "time_limit": hard}


@dataclass(frozen=True)
class Message:
    """A job's broker message: the engine whose queue it goes to, the job's dispatch number at
    sending (an older number marks a stale copy), its priority (voicefarm.dispatch.priorities), and
    whether the job is a document (its message fans it out in segments: voicefarm.worker.documents)."""

    job_id: str
    engine: str
    dispatch: int
    priority: int
    document: bool = False

    @classmethod
    def of(cls, job: Job, priority: int) -> Message:
        """The message that sends this job, as it stands, to its engine's queue."""
        return cls(job.id, job.engine, job.dispatch, priority, job.document)


def part_id(job_id: str, dispatch: int, part: str) -> str:
    """The task id of one part of a document's run (a segment, its join): named after the job,
    so the reconciler knows the job has messages in the broker (job_of)."""
    return f"{job_id}.{dispatch}.{part}"


def job_of(task_id: str) -> str:
    """The job a message belongs to: its task id is the job's id, or a part_id."""
    return task_id.split(".", 1)[0]


def enqueue(message: Message, settings: Settings) -> None:
    """Send a job to its engine's queue. The task id is the job id (the reconciler looks for it),
    and a run that dies without reporting calls `voicefarm.lost` (names.LOST) to move the job on."""
    app = get_celery()
    app.send_task(
        names.DOCUMENT if message.document else names.SYNTHESIZE,
        args=[message.job_id, message.dispatch],
        task_id=message.job_id,
        priority=message.priority,
        link_error=app.signature(names.LOST),
        **run_options(message.engine, settings),
    )


def align(source_key: str, text: str, language: str) -> None:
    """Ask the aligner (`voicefarm aligner`) for the word timestamps of a stored speech."""
    get_celery().send_task(names.ALIGN, args=[source_key, text, language], queue=names.ALIGN_QUEUE)


def announce(kind: str, object_id: str) -> None:
    """Ask the webhook sender (`voicefarm webhooks`) to deliver a job's or batch's callback."""
    get_celery().send_task(names.WEBHOOK, args=[kind, object_id], queue=names.WEBHOOK_QUEUE)
