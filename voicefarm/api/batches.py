"""Batches: pre-generate many phrases in one call; poll for progress and the manifest."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from voicefarm.api.deps import DB, Caller, Limit, newest
from voicefarm.jobs import cancel, submit
from voicefarm.jobs.notify import tenant_secret
from voicefarm.jobs.payloads import batch_out, batch_summaries
from voicefarm.library.retention import tombstones
from voicefarm.schemas import RETRY_AFTER, BatchOut, BatchRequest, BatchSummary, Problem, TenantOut
from voicefarm.store.models import Batch

router = APIRouter(prefix="/v1", tags=["batches"])
errors: dict[int | str, dict[str, Any]] = {code: {"model": Problem} for code in (401, 404, 422, 503)}


@router.post(
    "/batches",
    status_code=202,
    response_model=BatchOut,
    responses={**errors, **{code: {"model": Problem, "headers": RETRY_AFTER} for code in (429, 503)}},
)
async def create_batch(body: BatchRequest, request: Request, s: DB, caller: Caller) -> BatchOut:
    """Submit many items at once, or phrases × voices. Cached items finish at once; duplicates
    are synthesized once; batch jobs run behind interactive ones. Against the tenant's limits
    every item counts as a submission, with its characters: over one, the whole batch is refused."""
    batch = await submit.accept_batch(s, caller.tenant_id, body)
    return await run_in_threadpool(batch_out, s, batch, str(request.base_url))


@router.get("/batches", response_model=list[BatchSummary], responses=errors)
def list_batches(request: Request, s: DB, caller: Caller, limit: Limit = 20) -> list[BatchSummary]:
    """The tenant's latest batches, newest first (ix_batches_tenant_created), with their counts."""
    rows = s.scalars(newest(Batch, caller.tenant_id, limit)).all()
    return batch_summaries(s, list(rows), str(request.base_url))


def owned_batch(s: DB, caller: Caller, batch_id: str) -> Batch:
    batch = s.get(Batch, batch_id)
    if batch is None or batch.tenant_id != caller.tenant_id:
        raise tombstones.not_found(s, "batch", batch_id, caller.tenant_id, f"no batch {batch_id!r}")
    return batch


@router.get("/batches/{batch_id}", response_model=BatchOut, responses=errors)
def get_batch(batch_id: str, request: Request, s: DB, caller: Caller) -> BatchOut:
    return batch_out(s, owned_batch(s, caller, batch_id), str(request.base_url))


@router.post("/batches/{batch_id}/cancel", response_model=BatchOut, responses=errors)
def cancel_batch(batch_id: str, request: Request, s: DB, caller: Caller) -> BatchOut:
    """Cancel every job of the batch that has not ended (as POST /v1/jobs/{id}/cancel does each),
    and answer the batch as it stands then: done once none of its jobs is in flight."""
    batch = owned_batch(s, caller, batch_id)
    cancel.cancel_batch(batch_id)
    s.expire_all()
    return batch_out(s, batch, str(request.base_url))


@router.get("/tenant", response_model=TenantOut, tags=["tenant"])
def tenant(s: DB, caller: Caller) -> TenantOut:
    """The caller's tenant and the secret its callbacks are signed with."""
    return TenantOut(id=caller.tenant_id, webhook_secret=tenant_secret(s, caller.tenant_id))
