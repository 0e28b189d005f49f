"""A finished or canceled job's, or a finished batch's, callback: announced once its transaction
commits, and what it says. The signed delivery itself runs on the webhook sender (voicefarm.worker.webhooks)."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from voicefarm.dispatch.app import announce
from voicefarm.jobs.payloads import batch_out, job_out
from voicefarm.settings import get_settings
from voicefarm.store.models import Batch, Job, Tenant


def tenant_secret(session: Session, tenant_id: str) -> str:
    tenant = session.get(Tenant, tenant_id)
    assert tenant is not None, "every API key belongs to a tenant"
    if tenant.webhook_secret is None:
        tenant.webhook_secret = "whsec_" + secrets.token_urlsafe(32)
        session.commit()
    return tenant.webhook_secret


def announce_after_commit(session: Session, kind: str, object_id: str) -> None:
    """Queue the callback once the transaction that finished the job or batch commits: a
    receiver that calls back must find it finished."""
    event.listen(session, "after_commit", lambda _: announce(kind, object_id), once=True)


def payload(session: Session, kind: str, object_id: str) -> tuple[str, str, dict[str, Any]] | None:
    """(tenant, url, body) for a callback, or None when it no longer exists."""
    base = get_settings().base_url
    if kind == "job":
        job = session.get(Job, object_id)
        if job is None or not job.callback_url:
            return None
        return (
            job.tenant_id,
            job.callback_url,
            {
                "event": "job.canceled" if job.canceled_at else "job.finished",
                "job": job_out(job, base).model_dump(mode="json"),
            },
        )
    batch = session.get(Batch, object_id)
    if batch is None or not batch.callback_url:
        return None
    return (
        batch.tenant_id,
        batch.callback_url,
        {"event": "batch.finished", "batch": batch_out(session, batch, base).model_dump(mode="json")},
    )
