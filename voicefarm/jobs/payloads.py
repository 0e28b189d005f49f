"""How jobs and batches look to clients: one rendering for the API and for webhooks."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from voicefarm.library.cache import CachedAudio
from voicefarm.schemas import (
    AttemptOut,
    BatchCounts,
    BatchFailure,
    BatchItem,
    BatchOut,
    BatchSummary,
    JobOut,
    SegmentsOut,
    Timings,
)
from voicefarm.store.models import ACTIVE, Batch, Job, JobStatus, Outcome


def job_out(job: Job, base_url: str) -> JobOut:
    """A job as the API shows it; `base_url` ends in a slash."""
    done = job.status == JobStatus.succeeded.value
    return JobOut(
        id=job.id,
        status=job.shown_status,
        # Done from the cache: no synthesis of its own, nor one it followed.
        cache="hit" if done and not job.attempts and job.leader_id is None else "miss",
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
        timestamps_url=f"{base_url}v1/jobs/{job.id}/timestamps" if job.timestamps else None,
        timings=Timings(queued=job.created_at, started=job.started_at, finished=job.finished_at),
        attempts=[
            AttemptOut(
                engine=a.engine,
                segment=a.segment,
                worker=a.worker,
                outcome=a.outcome,
                error=a.error,
                started_at=a.started_at,
                finished_at=a.finished_at,
            )
            for a in job.attempts
            if a.segment is None or a.outcome != Outcome.succeeded
        ],
        segments=segments_out(job) if job.document and job.segments else None,
    )


def segments_out(*jobs: Job) -> SegmentsOut:
    """Where the segments of these documents stand, together."""
    return SegmentsOut(
        total=sum(len(job.segments) for job in jobs),
        done=sum(segment.done for job in jobs for segment in job.segments),
        cached=sum(segment.cached for job in jobs for segment in job.segments),
        attempts=sum(a.segment is not None for job in jobs for a in job.attempts),
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


def progress(counts: BatchCounts, total: int) -> float:
    """The share of a batch's items that are final."""
    return round((counts.succeeded + counts.failed + counts.canceled) / total, 4) if total else 1.0


def batch_out(s: Session, batch: Batch, base_url: str) -> BatchOut:
    """Counts and failures always; the manifest once every item is final."""
    jobs = s.scalars(select(Job).where(Job.batch_id == batch.id).order_by(Job.batch_index)).all()
    counts = BatchCounts(**{state: sum(j.shown_status == state for j in jobs) for state in BatchCounts.model_fields})
    done = not any(j.status in ACTIVE for j in jobs)
    documents = [j for j in jobs if j.document and j.segments]
    return BatchOut(
        id=batch.id,
        status="done" if done else "running",
        total=batch.total,
        counts=counts,
        progress=progress(counts, batch.total),
        segments=segments_out(*documents) if documents else None,
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


def batch_summaries(s: Session, batches: list[Batch], base_url: str) -> list[BatchSummary]:
    """Batches with their counts, from one grouped count over their jobs (ix_jobs_batch_id):
    no batch's items are loaded."""
    counted = s.execute(
        select(Job.batch_id, Job.status, func.count())
        .where(Job.batch_id.in_([b.id for b in batches]))
        .group_by(Job.batch_id, Job.status)
    ).all()
    by_batch: dict[str | None, dict[str, int]] = {}
    for batch_id, state, n in counted:
        by_batch.setdefault(batch_id, {})[state] = n
    out = []
    for batch in batches:
        counts = BatchCounts(**by_batch.get(batch.id, {}))
        out.append(
            BatchSummary(
                id=batch.id,
                status="running" if counts.queued or counts.running else "done",
                total=batch.total,
                counts=counts,
                progress=progress(counts, batch.total),
                poll_url=f"{base_url}v1/batches/{batch.id}",
                created_at=batch.created_at,
            )
        )
    return out
