"""Batches: pre-generate many phrases in one call; poll for progress and the manifest."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from voicefarm import callbacks
from voicefarm.api.deps import DB, Caller, get_catalog, get_live
from voicefarm.cache import get_cache
from voicefarm.errors import InvalidRequest, NotFound
from voicefarm.jobs import submit
from voicefarm.models import Batch
from voicefarm.schemas import BatchOut, BatchRequest, Problem, TenantOut
from voicefarm.settings import get_settings
from voicefarm.storage import get_store
from voicefarm.views import batch_out
from voicefarm.voices import cloned_voice
from voicefarm.webhooks import tenant_secret

router = APIRouter(prefix="/v1", tags=["batches"])
errors: dict[int | str, dict[str, Any]] = {code: {"model": Problem} for code in (401, 404, 422, 503)}


def plans(s: DB, tenant_id: str, body: BatchRequest) -> list[submit.Plan]:
    """Every item validated before anything is stored: one bad item refuses the batch."""
    settings, catalog = get_settings(), get_catalog()
    items = body.expand()
    if not items:
        raise InvalidRequest("the batch has no items")
    if len(items) > settings.batch_max_items:
        raise InvalidRequest(f"the batch has {len(items)} items; at most {settings.batch_max_items} are allowed")
    out = []
    for index, item in enumerate(items):
        voice_id = item.voice or settings.default_voice
        voice = catalog.voice(voice_id) or cloned_voice(s, tenant_id, voice_id, settings)
        try:
            out.append(submit.plan(item, voice, settings, catalog))
        except InvalidRequest as e:
            raise InvalidRequest(f"item {index}: {e.message}") from None
    return out


def create(s: DB, tenant_id: str, body: BatchRequest) -> Batch:
    callback = str(body.callback_url) if body.callback_url else None
    if callback is not None:
        callbacks.check(callback, get_settings())
    batch, to_send = submit.create_batch(
        s, get_cache(), get_store(), tenant_id, plans(s, tenant_id, body), live=get_live()(), callback_url=callback
    )
    submit.send(s, to_send, get_settings(), batch=batch)
    return batch


@router.post("/batches", status_code=202, response_model=BatchOut, responses=errors)
async def create_batch(body: BatchRequest, request: Request, s: DB, caller: Caller) -> BatchOut:
    """Submit many items at once, or phrases × voices. Cached items finish at once; duplicates
    are synthesized once; batch jobs run behind interactive ones."""
    batch = await run_in_threadpool(create, s, caller.tenant_id, body)
    return await run_in_threadpool(batch_out, s, batch, str(request.base_url))


@router.get("/batches/{batch_id}", response_model=BatchOut, responses=errors)
def get_batch(batch_id: str, request: Request, s: DB, caller: Caller) -> BatchOut:
    batch = s.get(Batch, batch_id)
    if batch is None or batch.tenant_id != caller.tenant_id:
        raise NotFound(f"no batch {batch_id!r}")
    return batch_out(s, batch, str(request.base_url))


@router.get("/tenant", response_model=TenantOut, tags=["tenant"])
def tenant(s: DB, caller: Caller) -> TenantOut:
    """The caller's tenant and the secret its callbacks are signed with."""
    return TenantOut(id=caller.tenant_id, webhook_secret=tenant_secret(s, caller.tenant_id))
