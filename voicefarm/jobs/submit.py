"""Submitting: the one path from a parsed request (a job, a batch, or OpenAI's speech request) to
its audio from the cache, its job or its batch. The API's routers each make one call here.

A submission is planned (jobs/plans.py), counted against the tenant's limits (tenancy/admission.py),
then answered from the cache or recorded and sent to its engine's queue (jobs/recording.py). It
runs on the event loop, and goes to a thread only for what may block (the database, a callback's
host, a batch's planning) and only when it must: a job whose audio Redis holds costs one round
trip of Redis and no thread. The threads are anyio's, the pool FastAPI runs endpoints on, so a
submission competes for the same threads as before it came here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager

from anyio import to_thread
from pydantic import HttpUrl
from sqlalchemy.orm import Session

from voicefarm.engines.base import Voice
from voicefarm.errors import InvalidRequest
from voicefarm.fleet.catalog import Catalog, current_catalog
from voicefarm.jobs.plans import Plan, Request, checked, plan, plan_items
from voicefarm.jobs.recording import record_and_send, record_and_send_batch
from voicefarm.library.cache import CachedAudio, get_cache
from voicefarm.library.voices import cloned_voice
from voicefarm.schemas import BatchItemRequest, BatchRequest, JobRequest
from voicefarm.settings import Settings, get_settings
from voicefarm.store.models import Batch, Job
from voicefarm.telemetry.metrics import cache_requests
from voicefarm.tenancy import admission, targets
from voicefarm.tenancy.windows import get_windows

# OpenAI's own voice names: each speaks as settings.openai_voices maps it, else in the farm's default voice.
OPENAI_VOICES = (
    "alloy",
    "ash",
    "ballad",
    "cedar",
    "coral",
    "echo",
    "fable",
    "marin",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
)
# OpenAI's pcm is raw 16-bit at 24 kHz; the farm's is at the engine's rate unless asked.
OPENAI_RATES = {"pcm": 24000}


async def accept_job(
    session: Session, tenant_id: str, request: JobRequest, idempotency_key: str | None = None
) -> Job | CachedAudio:
    """A request's audio from the cache, or its job, recorded and enqueued; InvalidRequest when
    it is invalid, TooManyRequests when it is over one of the tenant's limits."""
    settings, catalog = get_settings(), await current_catalog()
    policy = await tenant_policy(session, tenant_id)
    (voice,) = await voices(session, tenant_id, [request], settings, catalog)
    p = plan(request, voice, settings, catalog, policy.key_scope)
    callback = await checked_callback(request.callback_url, settings)
    # Hot path: the preferred rendition is in Redis; no thread, no database, and the tenant's
    # windows and the cache asked at once, so it waits for one round trip, not two. A retry with
    # an idempotency key skips the cache, to get its first job back; so does a request for
    # timestamps, which are a job's.
    peek = None if idempotency_key or p.timestamps else get_cache().peek(p.keys[0])
    async with counted(policy, [p], peek) as hit:
        result = (
            hit
            if hit is not None
            else await to_thread.run_sync(record_and_send, session, policy, p, idempotency_key, callback)
        )
    cache_requests.labels("hit" if isinstance(result, CachedAudio) else "miss").inc()
    return result


async def accept_batch(session: Session, tenant_id: str, request: BatchRequest) -> Batch:
    """A batch recorded: its cached items done at once, its other jobs enqueued. Against the
    tenant's limits every item counts as a submission, with its characters: over one, or with one
    invalid item, the whole batch is refused."""
    settings, catalog = get_settings(), await current_catalog()
    policy = await tenant_policy(session, tenant_id)
    items = await to_thread.run_sync(batch_items, request, settings)
    found = await voices(session, tenant_id, items, settings, catalog)
    plans = await to_thread.run_sync(plan_items, items, found, settings, catalog, policy.key_scope)
    callback = await checked_callback(request.callback_url, settings)
    async with counted(policy, plans):
        return await to_thread.run_sync(record_and_send_batch, session, policy, plans, callback)


async def accept_speech(
    session: Session, tenant_id: str, *, model: str, text: str, voice: str, format: str, speed: float, timestamps: bool
) -> tuple[Job | CachedAudio, int | None]:
    """OpenAI's speech request, accepted as the job it maps to: its model names a tier, its voice
    a farm voice. Returns what accept_job does, and the sample rate the audio is to have."""
    settings = get_settings()
    quality = settings.openai_models.get(model, model)
    if quality not in settings.tiers:
        raise InvalidRequest(
            f"model {model!r} is not supported; use one of {', '.join([*settings.openai_models, *settings.tiers])}"
        )
    if voice in OPENAI_VOICES:
        voice = settings.openai_voices.get(voice, settings.default_voice)
    request = JobRequest(
        text=text,
        voice=voice,
        quality=quality,
        format=format,
        speed=speed,
        sample_rate=OPENAI_RATES.get(format),
        timestamps=timestamps,
    )
    return await accept_job(session, tenant_id, request), request.sample_rate


async def tenant_policy(session: Session, tenant_id: str) -> admission.Policy:
    """The tenant's admission policy: from memory, or from its row on a thread when stale."""
    cached = admission.cached_policy(tenant_id)
    return (
        cached if cached is not None else await to_thread.run_sync(admission.policy, session, tenant_id, get_settings())
    )


async def voices(
    session: Session, tenant_id: str, requests: Sequence[Request], settings: Settings, catalog: Catalog
) -> list[Voice | None]:
    """Each request's voice (None: no such voice): a built-in one from the catalog, else the
    tenant's cloned one, all read on one thread, so that requests in built-in voices need none."""
    ids = [request.voice or settings.default_voice for request in requests]
    found = {voice_id: catalog.voice(voice_id) for voice_id in ids}
    cloned = [voice_id for voice_id, voice in found.items() if voice is None]
    if cloned:
        found |= await to_thread.run_sync(
            lambda: {voice_id: cloned_voice(session, tenant_id, voice_id, settings) for voice_id in cloned}
        )
    return [found[voice_id] for voice_id in ids]


def batch_items(request: BatchRequest, settings: Settings) -> list[BatchItemRequest]:
    """The batch's items, phrases × voices expanded, if the batch may have that many. Its shared
    options are checked even when its items carry their own: the schema refuses a bad one either way."""
    checked(request, settings)
    items = request.expand()
    if not items:
        raise InvalidRequest("the batch has no items")
    if len(items) > settings.batch_max_items:
        raise InvalidRequest(f"the batch has {len(items)} items; at most {settings.batch_max_items} are allowed")
    return items


async def checked_callback(url: HttpUrl | None, settings: Settings) -> str | None:
    """The callback URL, once its host is one the farm may call (tenancy/targets.py)."""
    if url is None:
        return None
    callback = str(url)
    await to_thread.run_sync(targets.check, callback, settings)  # resolving its host may block: off the event loop
    return callback


@asynccontextmanager
async def counted(
    policy: admission.Policy, plans: Sequence[Plan], peek: Awaitable[CachedAudio | None] | None = None
) -> AsyncIterator[CachedAudio | None]:
    """Count the plans in the tenant's windows (TooManyRequests if they have no room) while the
    block accepts them; if it raises, they were not accepted, and must not count against the
    tenant. `peek`, the cache's answer, is asked alongside, so that both take one round trip of
    Redis; the block gets it."""
    windows = get_windows()
    taken, hit = await asyncio.gather(
        windows.take(policy, len(plans), sum(len(p.text) for p in plans)), peek or none(), return_exceptions=True
    )
    if isinstance(taken, BaseException):
        raise taken
    try:
        if isinstance(hit, BaseException):
            raise hit
        yield hit
    except Exception:
        await windows.give_back(taken)
        raise


async def none() -> None:
    return None
