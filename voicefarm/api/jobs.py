"""Jobs: submit, poll, fetch audio, hear it as it is made, or cancel."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, StreamingResponse
from sqlalchemy.orm import Session, selectinload

from voicefarm.api.deps import DB, Caller, Limit, newest
from voicefarm.api.streams import live_chunks, started, stored_chunks
from voicefarm.audio import captions
from voicefarm.audio.codec import content_type
from voicefarm.audio.encoder import STREAM_FORMATS
from voicefarm.engines.base import Word
from voicefarm.errors import JobFailed, NotReady
from voicefarm.jobs import cancel, submit
from voicefarm.jobs.payloads import cached_out, job_out
from voicefarm.library import timestamps
from voicefarm.library.cache import CachedAudio, get_cache
from voicefarm.library.renditions import content_key_of
from voicefarm.library.retention import tombstones
from voicefarm.schemas import RETRY_AFTER, JobOut, JobRequest, Problem, TimestampsOut
from voicefarm.store.models import Job, JobStatus, Rendition
from voicefarm.store.objects import get_store

router = APIRouter(prefix="/v1", tags=["jobs"])
errors: dict[int | str, dict[str, Any]] = {code: {"model": Problem} for code in (400, 401, 404, 409, 422, 503)}


@router.post(
    "/jobs",
    status_code=202,
    response_model=JobOut,
    responses={**errors, **{code: {"model": Problem, "headers": RETRY_AFTER} for code in (429, 503)}},
)
async def create_job(
    body: JobRequest,
    request: Request,
    response: Response,
    s: DB,
    caller: Caller,
    idempotency_key: Annotated[
        str | None,
        Header(max_length=200, description="Retries with the same key return the first job instead of making another"),
    ] = None,
) -> JobOut:
    """Queue a synthesis job, or answer at once (200, cache: hit) when its audio already exists."""
    result = await submit.accept_job(s, caller.tenant_id, body, idempotency_key)
    out = (
        cached_out(result, str(request.base_url))
        if isinstance(result, CachedAudio)
        else job_out(result, str(request.base_url))
    )
    if out.cache == "hit":
        response.status_code = 200
    return out


@router.get("/jobs", response_model=list[JobOut], responses=errors)
def list_jobs(request: Request, s: DB, caller: Caller, limit: Limit = 20) -> list[JobOut]:
    """The tenant's latest jobs, newest first (ix_jobs_tenant_created), with their attempts and,
    for a long text, its segments' progress."""
    # Attempts and a document's segments in one query each, not one a job.
    loads = (selectinload(Job.attempts), selectinload(Job.segments))
    jobs = s.scalars(newest(Job, caller.tenant_id, limit).options(*loads)).all()
    return [job_out(job, str(request.base_url)) for job in jobs]


def owned_job(s: DB, caller: Caller, job_id: str) -> Job:
    job = s.get(Job, job_id)
    if job is None or job.tenant_id != caller.tenant_id:
        raise tombstones.not_found(s, "job", job_id, caller.tenant_id, f"no job {job_id!r}")
    return job


@router.get("/jobs/{job_id}", response_model=JobOut, responses=errors)
def get_job(job_id: str, request: Request, s: DB, caller: Caller) -> JobOut:
    return job_out(owned_job(s, caller, job_id), str(request.base_url))


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, responses=errors)
def cancel_job(job_id: str, request: Request, s: DB, caller: Caller) -> JobOut:
    """Cancel the job: queued, it never runs; running, it stops at its next piece of audio and
    frees its worker; its listeners' streams end, and its callback says `job.canceled`. A job
    whose synthesis others follow (the same speech, asked for again) is canceled for its owner
    alone: the synthesis goes on for them. Answers the job as it stands then, so a job that
    ended before the cancel came shows its own outcome: a cancel never fails on a race."""
    owned_job(s, caller, job_id)
    cancel.cancel_job(job_id)
    s.expire_all()
    return job_out(owned_job(s, caller, job_id), str(request.base_url))


def serve(s: Session, object_key: str, fmt: str) -> Response:
    """The audio, downloaded: a use, which keeps it from expiring."""
    get_cache().used(s, [content_key_of(object_key)])
    store = get_store()
    url = store.presigned_url(object_key)
    if url is not None:
        return RedirectResponse(url, status_code=307)
    return Response(store.get(object_key), media_type=content_type(fmt))


@router.get("/jobs/{job_id}/audio", responses={**errors, 200: {"content": {"audio/wav": {}}}})
def get_job_audio(job_id: str, s: DB, caller: Caller) -> Response:
    """The job's audio: a redirect to a presigned URL (S3), or the bytes (local store)."""
    job = owned_job(s, caller, job_id)
    if job.status != JobStatus.succeeded.value:
        raise NotReady(f"job {job_id} is {job.status}; its audio is not ready")
    if not job.object_key:  # purged (DELETE /v1/cache, a deleted voice)
        raise NotReady(f"job {job_id} succeeded, but its audio has since been deleted")
    return serve(s, job.object_key, job.format)


@router.get("/audio/{name}", responses={**errors, 200: {"content": {"audio/wav": {}}}})
def get_audio(name: str, s: DB, caller: Caller) -> Response:
    """Audio by content key (`<key>.<format>`), as cache hits return it."""
    key = name.rsplit(".", 1)[0]
    row = s.get(Rendition, key)
    if row is None or row.object_key != f"audio/{name}":
        raise tombstones.not_found(s, "audio", name, caller.tenant_id, f"no audio {name!r}")
    return serve(s, row.object_key, row.format)


@router.get(
    "/jobs/{job_id}/stream",
    responses={**errors, 200: {"content": {"audio/wav": {}}}},
)
async def stream_job_audio(
    job_id: str,
    s: DB,
    caller: Caller,
    format: Annotated[
        Literal["pcm", "wav", "mp3", "opus", "aac"] | None,
        Query(description="Default: the job's own format. WAV streams with a header of unknown length."),
    ] = None,
) -> StreamingResponse:
    """The job's audio as it is synthesized, chunk by chunk: call it while the job is queued
    and it starts with the first audio; a finished job streams its stored file. A failure
    after the audio began cuts the stream short; the job itself goes on down its chain. A job
    in a format that cannot be streamed (flac, ogg) streams only its stored file. A job that
    failed before its audio began is a 409 carrying the job's error."""
    job = await run_in_threadpool(owned_job, s, caller, job_id)
    fmt = format or job.format
    if fmt not in STREAM_FORMATS and job.status == JobStatus.failed.value:
        raise JobFailed(f"job {job_id} failed: {job.error}")
    if fmt not in STREAM_FORMATS and job.status != JobStatus.succeeded.value:
        raise NotReady(
            f"job {job_id} is {job.status}: its format {fmt!r} cannot be streamed as it is made; ask again "
            f"once it has succeeded, or for one of {', '.join(STREAM_FORMATS)}"
        )
    if job.status == JobStatus.succeeded.value:
        if not job.object_key:  # purged (DELETE /v1/cache, a deleted voice)
            raise NotReady(f"job {job_id} succeeded, but its audio has since been deleted")
        chunks = stored_chunks(s, job.object_key, job.format, fmt, job.output_rate)
    else:
        chunks = live_chunks(s, job.id, job.format, fmt, job.output_rate)
    return StreamingResponse(await started(chunks), media_type=content_type(fmt))


@router.get("/jobs/{job_id}/timestamps", response_model=TimestampsOut, responses=errors)
def get_job_timestamps(job_id: str, s: DB, caller: Caller) -> TimestampsOut:
    """When each word of the job's text is heard: 404 when the job did not ask for timestamps,
    409 until it has succeeded and its audio is aligned."""
    row = timestamps.of_job(s, owned_job(s, caller, job_id))
    return TimestampsOut.model_validate({"words": row.words, "source": row.source})


def caption_file(s: Session, caller: Caller, job_id: str, fmt: Literal["vtt", "srt"]) -> Response:
    row = timestamps.of_job(s, owned_job(s, caller, job_id))
    return Response(captions.render([Word(**w) for w in row.words], fmt), media_type=captions.MEDIA_TYPES[fmt])


@router.get("/jobs/{job_id}/captions.vtt", responses={**errors, 200: {"content": {"text/vtt": {}}}})
def get_job_captions_vtt(job_id: str, s: DB, caller: Caller) -> Response:
    """The job's words as WebVTT captions; the same errors as its timestamps."""
    return caption_file(s, caller, job_id, "vtt")


@router.get("/jobs/{job_id}/captions.srt", responses={**errors, 200: {"content": {"application/x-subrip": {}}}})
def get_job_captions_srt(job_id: str, s: DB, caller: Caller) -> Response:
    """The job's words as SubRip captions; the same errors as its timestamps."""
    return caption_file(s, caller, job_id, "srt")
