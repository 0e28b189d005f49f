"""Jobs: submit, poll, fetch audio."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from voicefarm import callbacks
from voicefarm.api.deps import DB, Caller, current_catalog, get_live
from voicefarm.audio import content_type
from voicefarm.cache import CachedAudio, get_cache
from voicefarm.errors import NotFound, NotReady
from voicefarm.jobs import submit as lifecycle_submit
from voicefarm.metrics import cache_requests
from voicefarm.models import Job, JobStatus, Rendition
from voicefarm.schemas import JobOut, JobRequest, Problem
from voicefarm.settings import get_settings
from voicefarm.storage import get_store
from voicefarm.views import cached_out, job_out
from voicefarm.voices import cloned_voice

router = APIRouter(prefix="/v1", tags=["jobs"])
errors: dict[int | str, dict[str, Any]] = {code: {"model": Problem} for code in (400, 401, 404, 409, 422, 503)}


@router.post("/jobs", status_code=202, response_model=JobOut, responses=errors)
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
    result = await accept(s, caller.tenant_id, body, idempotency_key)
    if isinstance(result, CachedAudio):
        response.status_code = 200
        return cached_out(result, str(request.base_url))
    return job_out(result, str(request.base_url))


async def accept(s: Session, tenant_id: str, body: JobRequest, idempotency_key: str | None = None) -> Job | CachedAudio:
    """A request's audio from the cache, or its job, recorded and enqueued; InvalidRequest when
    it is invalid. Every endpoint that synthesizes comes through here."""
    settings, catalog = get_settings(), await current_catalog()
    voice_id = body.voice or settings.default_voice
    voice = catalog.voice(voice_id) or await run_in_threadpool(cloned_voice, s, tenant_id, voice_id, settings)
    p = lifecycle_submit.plan(body, voice, settings, catalog)
    # Hot path: the preferred rendition is in Redis; no thread, no database. A retry with an
    # idempotency key skips it, to get its first job back.
    hit = None if idempotency_key else await get_cache().peek(p.keys[0])
    callback = str(body.callback_url) if body.callback_url else None
    if callback is not None:  # resolving its host may block: off the event loop
        await run_in_threadpool(callbacks.check, callback, settings)
    result = hit if hit is not None else await run_in_threadpool(submit, s, tenant_id, p, idempotency_key, callback)
    cache_requests.labels("hit" if isinstance(result, CachedAudio) else "miss").inc()
    return result


def submit(
    s: Session, tenant_id: str, p: lifecycle_submit.Plan, idempotency_key: str | None, callback_url: str | None = None
) -> Job | CachedAudio:
    result, new = lifecycle_submit.submit(
        s,
        get_cache(),
        get_store(),
        tenant_id,
        p,
        live=get_live()(),
        idempotency_key=idempotency_key,
        callback_url=callback_url,
    )
    if new:
        assert isinstance(result, Job)
        lifecycle_submit.send(s, [result], get_settings())
    return result


def owned_job(s: DB, caller: Caller, job_id: str) -> Job:
    job = s.get(Job, job_id)
    if job is None or job.tenant_id != caller.tenant_id:
        raise NotFound(f"no job {job_id!r}")
    return job


@router.get("/jobs/{job_id}", response_model=JobOut, responses=errors)
def get_job(job_id: str, request: Request, s: DB, caller: Caller) -> JobOut:
    return job_out(owned_job(s, caller, job_id), str(request.base_url))


def serve(object_key: str, fmt: str) -> Response:
    store = get_store()
    url = store.presigned_url(object_key)
    if url is not None:
        return RedirectResponse(url, status_code=307)
    return Response(store.get(object_key), media_type=content_type(fmt))


@router.get("/jobs/{job_id}/audio", responses={**errors, 200: {"content": {"audio/wav": {}}}})
def get_job_audio(job_id: str, s: DB, caller: Caller) -> Response:
    """The job's audio: a redirect to a presigned URL (S3), or the bytes (local store)."""
    job = owned_job(s, caller, job_id)
    if job.status != JobStatus.succeeded.value or not job.object_key:
        raise NotReady(f"job {job_id} is {job.status}; its audio is not ready")
    return serve(job.object_key, job.format)


@router.get("/audio/{name}", responses={**errors, 200: {"content": {"audio/wav": {}}}})
def get_audio(name: str, s: DB, caller: Caller) -> Response:
    """Audio by content key (`<key>.<format>`), as cache hits return it."""
    key = name.rsplit(".", 1)[0]
    row = s.get(Rendition, key)
    if row is None or row.object_key != f"audio/{name}":
        raise NotFound(f"no audio {name!r}")
    return serve(row.object_key, row.format)
