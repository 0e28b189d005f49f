"""Batches: pre-generate many phrases in one call; poll for progress and the manifest."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from voicefarm.api.deps import DB, Caller, Limit, get_catalog, get_live, newest, tenant_policy
from voicefarm.errors import InvalidRequest
from voicefarm.jobs import submit
from voicefarm.jobs.notify import tenant_secret
from voicefarm.jobs.payloads import batch_out, batch_summaries
from voicefarm.library.cache import get_cache
from voicefarm.library.retention import tombstones
from voicefarm.library.voices import cloned_voice
from voicefarm.schemas import RETRY_AFTER, BatchOut, BatchRequest, BatchSummary, Problem, TenantOut
from voicefarm.settings import get_settings
from voicefarm.store.models import Batch
from voicefarm.store.objects import get_store
from voicefarm.tenancy import admission, targets
from voicefarm.tenancy.windows import get_windows

router = APIRouter(prefix="/v1", tags=["batches"])
errors: dict[int | str, dict[str, Any]] = {code: {"model": Problem} for code in (401, 404, 422, 503)}


def plans(s: DB, tenant_id: str, body: BatchRequest, scope: str | None) -> list[submit.Plan]:
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
            out.append(submit.plan(item, voice, settings, catalog, scope))
        except InvalidRequest as e:
            raise InvalidRequest(f"item {index}: {e.message}") from None
    return out


def create(s: DB, policy: admission.Policy, callback: str | None, items: list[submit.Plan]) -> Batch:
    batch, to_send = submit.create_batch(
        s, get_cache(), get_store(), policy.tenant_id, items, live=get_live()(), callback_url=callback, policy=policy
    )
    submit.send(s, to_send, get_settings(), batch=batch)
    return batch


@router.post(
    "/batches",
    status_code=202,
    response_model=BatchOut,
    responses={**errors, 429: {"model": Problem, "headers": RETRY_AFTER}},
)
async def create_batch(body: BatchRequest, request: Request, s: DB, caller: Caller) -> BatchOut:
    """Submit many items at once, or phrases × voices. Cached items finish at once; duplicates
    are synthesized once; batch jobs run behind interactive ones. Against the tenant's limits
    every item counts as a submission, with its characters: over one, the whole batch is refused."""
    policy = await tenant_policy(s, caller.tenant_id)
    items = await run_in_threadpool(plans, s, caller.tenant_id, body, policy.key_scope)
    callback = str(body.callback_url) if body.callback_url else None
    if callback is not None:  # resolving its host may block: off the event loop
        await run_in_threadpool(targets.check, callback, get_settings())
    windows = get_windows()
    granted = await windows.take(policy, len(items), sum(len(p.text) for p in items))
    try:
        batch = await run_in_threadpool(create, s, policy, callback, items)
    except Exception:
        await windows.give_back(granted)  # not accepted: it must not count against the tenant
        raise
    return await run_in_threadpool(batch_out, s, batch, str(request.base_url))


@router.get("/batches", response_model=list[BatchSummary], responses=errors)
def list_batches(request: Request, s: DB, caller: Caller, limit: Limit = 20) -> list[BatchSummary]:
    """The tenant's latest batches, newest first (ix_batches_tenant_created), with their counts."""
    rows = s.scalars(newest(Batch, caller.tenant_id, limit)).all()
    return batch_summaries(s, list(rows), str(request.base_url))


@router.get("/batches/{batch_id}", response_model=BatchOut, responses=errors)
def get_batch(batch_id: str, request: Request, s: DB, caller: Caller) -> BatchOut:
    batch = s.get(Batch, batch_id)
    if batch is None or batch.tenant_id != caller.tenant_id:
        raise tombstones.not_found(s, "batch", batch_id, caller.tenant_id, f"no batch {batch_id!r}")
    return batch_out(s, batch, str(request.base_url))


@router.get("/tenant", response_model=TenantOut, tags=["tenant"])
def tenant(s: DB, caller: Caller) -> TenantOut:
    """The caller's tenant and the secret its callbacks are signed with."""
    return TenantOut(id=caller.tenant_id, webhook_secret=tenant_secret(s, caller.tenant_id))
