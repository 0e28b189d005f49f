"""Tombstones: what an expired job, batch or audio leaves behind, so that its id answers
"expired" rather than "no such". The collector buries; the API asks (`not_found`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from voicefarm.errors import Expired, NotFound
from voicefarm.settings import get_settings
from voicefarm.store import db
from voicefarm.store.models import Tombstone


def bury(s: Session, kind: str, dead: Iterable[Any], now: datetime) -> None:
    """Tombstones for these (id, tenant) rows: audio made and expired again gets a new date."""
    values = [{"kind": kind, "id": object_id, "tenant_id": tenant, "expired_at": now} for object_id, tenant in dead]
    if values:
        insert = db.upsert(s, Tombstone).values(values)
        s.execute(insert.on_conflict_do_update(index_elements=["kind", "id"], set_={"expired_at": now}))


def not_found(s: Session, kind: str, object_id: str, tenant_id: str, plain: str) -> NotFound:
    """The error for a job, batch or audio that is not there: `Expired`, saying when, to the
    tenant it belonged to (audio: to anyone, who could fetch it before); otherwise `plain`, so
    other tenants learn nothing of it."""
    stone = s.get(Tombstone, (kind, object_id))
    if stone is None or stone.tenant_id not in (None, tenant_id):
        return NotFound(plain)
    settings = get_settings()
    when = f"{stone.expired_at:%Y-%m-%d %H:%M} UTC"
    if kind == "audio":
        return Expired(
            f"audio {object_id} expired on {when}, unused for "
            f"VOICEFARM_AUDIO_RETENTION_DAYS={settings.audio_retention_days} days"
        )
    return Expired(f"{kind} {object_id} expired on {when} (VOICEFARM_JOB_RETENTION_DAYS={settings.job_retention_days})")
