"""Callbacks: when a job or batch that carries a callback_url finishes, POST it there, signed
with the tenant's secret and retried with backoff, by a worker of its own (`voicefarm webhooks`)
so a slow receiver never holds a synthesis worker."""

from __future__ import annotations

import json
import logging
import time

import httpx
from celery import Task, shared_task

from voicefarm.dispatch import names
from voicefarm.errors import InvalidRequest
from voicefarm.jobs.notify import payload, tenant_secret
from voicefarm.settings import get_settings
from voicefarm.signing import HEADER, signature
from voicefarm.store import db
from voicefarm.tenancy import targets

log = logging.getLogger(__name__)

MAX_TRIES = 8  # backoff 1, 2, 4 … 128 s: about four minutes of a receiver being down


@shared_task(name=names.WEBHOOK, bind=True, max_retries=MAX_TRIES - 1)
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
        target = targets.check(url, get_settings())
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
