"""Callbacks: when a job or batch that carries a callback_url finishes, POST it there, signed
with the tenant's secret and retried with backoff, by a worker of its own (`voicefarm webhooks`)
so a slow receiver never holds a synthesis worker."""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import Any

import httpx
from celery import Task
from sqlalchemy import event
from sqlalchemy.orm import Session

from voicefarm import callbacks, db
from voicefarm.errors import InvalidRequest
from voicefarm.models import Batch, Job, Tenant
from voicefarm.queue import app
from voicefarm.settings import get_settings
from voicefarm.signing import HEADER, signature

log = logging.getLogger(__name__)

QUEUE = "voicefarm.webhooks"
MAX_TRIES = 8  # backoff 1, 2, 4 … 128 s: about four minutes of a receiver being down


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
    event.listen(
        session,
        "after_commit",
        lambda _: app.send_task("voicefarm.webhook", args=[kind, object_id], queue=QUEUE),
        once=True,
    )


def payload(session: Session, kind: str, object_id: str) -> tuple[str, str, dict[str, Any]] | None:
    """(tenant, url, body) for a callback, or None when it no longer exists."""
    from voicefarm.views import batch_out, job_out

    base = get_settings().base_url
    if kind == "job":
        job = session.get(Job, object_id)
        if job is None or not job.callback_url:
            return None
        return (
            job.tenant_id,
            job.callback_url,
            {"event": "job.finished", "job": job_out(job, base).model_dump(mode="json")},
        )
    batch = session.get(Batch, object_id)
    if batch is None or not batch.callback_url:
        return None
    return (
        batch.tenant_id,
        batch.callback_url,
        {"event": "batch.finished", "batch": batch_out(session, batch, base).model_dump(mode="json")},
    )


@app.task(name="voicefarm.webhook", bind=True, max_retries=MAX_TRIES - 1)
def deliver(self: Task, kind: str, object_id: str) -> None:
    with db.session() as s:
        found = payload(s, kind, object_id)
        if found is None:
            return
        tenant_id, url, body = found
        secret = tenant_secret(s, tenant_id)
    raw = json.dumps(body, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "voicefarm-webhooks",
        HEADER: signature(secret, raw, int(time.time())),
    }
    try:
        target = callbacks.check(url, get_settings())
    except InvalidRequest as refused:  # its host now resolves inside the network: rebinding
        log.warning("callback %s %s not delivered: %s", kind, object_id, refused.message)
        return
    try:
        # The checked address, not the name again: the name could resolve elsewhere by now.
        with httpx.Client(timeout=10, follow_redirects=False) as client:
            response = client.post(
                target.url,
                content=raw,
                headers={**headers, "Host": target.host_header},
                extensions={"sni_hostname": target.host},
            )
        response.raise_for_status()
    except httpx.HTTPError as e:
        log.warning("callback %s %s to %s failed (try %d): %s", kind, object_id, url, self.request.retries + 1, e)
        raise self.retry(exc=e, countdown=2**self.request.retries) from None
