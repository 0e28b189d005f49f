"""The Celery app: one queue per engine (`tts.<engine>`), late acks, one job per worker process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from celery import Celery

from voicefarm import broker
from voicefarm.settings import Settings, get_settings


def make_celery(settings: Settings) -> Celery:
    app = Celery(
        "voicefarm",
        broker=settings.broker_url,
        backend=settings.result_backend,
        include=["voicefarm.tasks", "voicefarm.longform", "voicefarm.webhooks"],
    )
    if settings.result_backend.startswith("file://"):
        Path(settings.result_backend.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    app.conf.update(
        broker_transport_options=broker.for_settings(settings).transport_options(),
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # the job row is the result; only a document's segments keep one, for its chord
        result_backend_transport_options={"global_keyprefix": f"{settings.redis_prefix}:"},
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


@dataclass(frozen=True)
class Message:
    """A job's broker message: the engine whose queue it goes to, the job's dispatch number at
    sending (an older number marks a stale copy), its priority (voicefarm.jobs.fairness), and
    whether the job is a document (its message fans it out in segments: voicefarm.longform)."""

    job_id: str
    engine: str
    dispatch: int
    priority: int
    document: bool = False


def part_id(job_id: str, dispatch: int, part: str) -> str:
    """The task id of one part of a document's run (a segment, its join): named after the job,
    so the reconciler knows the job has messages in the broker (job_of)."""
    return f"{job_id}.{dispatch}.{part}"


def job_of(task_id: str) -> str:
    """The job a message belongs to: its task id is the job's id, or a part_id."""
    return task_id.split(".", 1)[0]


def enqueue(message: Message, settings: Settings) -> None:
    """Send a job to its engine's queue. The task id is the job id (the reconciler looks for it),
    and a run that dies without reporting calls `voicefarm.lost` to move the job on."""
    app.send_task(
        "voicefarm.document" if message.document else "voicefarm.synthesize",
        args=[message.job_id, message.dispatch],
        task_id=message.job_id,
        priority=message.priority,
        link_error=app.signature("voicefarm.lost"),
        **run_options(message.engine, settings),
    )


# Its own queue, not `tts.*`: what the broker's queue scans count as engines' jobs never holds it.
ALIGN_QUEUE = "voicefarm.align"


def align(source_key: str, text: str, language: str) -> None:
    """Ask the aligner (`voicefarm aligner`) for the word timestamps of a stored speech."""
    app.send_task("voicefarm.align", args=[source_key, text, language], queue=ALIGN_QUEUE)
