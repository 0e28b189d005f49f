"""How jobs and batches look to clients: one rendering for the API and for webhooks."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from voicefarm.cache import CachedAudio
from voicefarm.models import ACTIVE, Batch, Job, JobStatus
from voicefarm.schemas import AttemptOut, BatchCounts, BatchFailure, BatchItem, BatchOut, JobOut, Timings


def job_out(job: Job, base_url: str) -> JobOut:
    """A job as the API shows it; `base_url` ends in a slash."""
    done = job.status == JobStatus.succeeded.value
    return JobOut(
        id=job.id,
        status=job.status,
        poll_url=f"{base_url}v1/jobs/{job.id}",
        engine=job.engine,
        voice=job.voice,
        spoken_voice=job.link.voice,
        language=job.language,
        quality=job.quality,
        format=job.format,
        content_key=job.content_key,
        audio_url=f"{base_url}v1/{job.object_key}" if done and job.object_key else None,
        duration=job.duration,
        sample_rate=job.sample_rate,
        synthesis_seconds=job.synthesis_seconds,
        error=job.error,
        timings=Timings(queued=job.created_at, started=job.started_at, finished=job.finished_at),
        attempts=[
            AttemptOut(
                engine=a.engine,
                worker=a.worker,
                outcome=a.outcome,
                error=a.error,
                started_at=a.started_at,
                finished_at=a.finished_at,
            )
            for a in job.attempts
        ],
    )


def cached_out(hit: CachedAudio, base_url: str) -> JobOut:
    return JobOut(
        id=None,
        status="succeeded",
        cache="hit",
        engine=hit.engine,
        format=hit.format,
        content_key=hit.content_key,
        audio_url=f"{base_url}v1/{hit.object_key}",
        duration=hit.duration,
        sample_rate=hit.sample_rate,
    )


def batch_out(s: Session, batch: Batch, base_url: str) -> BatchOut:
    """Counts and failures always; the manifest once every item is final."""
    jobs = s.scalars(select(Job).where(Job.batch_id == batch.id).order_by(Job.batch_index)).all()
    counts = BatchCounts(**{state: sum(j.status == state for j in jobs) for state in BatchCounts.model_fields})
    done = not any(j.status in ACTIVE for j in jobs)
    return BatchOut(
        id=batch.id,
        status="done" if done else "running",
        total=batch.total,
        counts=counts,
        progress=round((counts.succeeded + counts.failed) / batch.total, 4) if batch.total else 1.0,
        poll_url=f"{base_url}v1/batches/{batch.id}",
        failed=[
            BatchFailure(index=j.batch_index, text=j.text, voice=j.voice, error=j.error)
            for j in jobs
            if j.status == JobStatus.failed.value
        ],
        manifest=[
            BatchItem(
                index=j.batch_index,
                text=j.text,
                voice=j.voice,
                format=j.format,
                job_id=j.id,
                audio_url=f"{base_url}v1/{j.object_key}" if j.object_key else None,
            )
            for j in jobs
        ]
        if done
        else [],
    )
