"""The voice library: uploaded samples, their versions, and purging everything made from them."""

from __future__ import annotations

import logging
from dataclasses import asdict

from sqlalchemy import delete
from sqlalchemy.orm import Session

from voicefarm.audio import reference
from voicefarm.engines.base import Voice
from voicefarm.errors import SampleTooLarge
from voicefarm.library import renditions
from voicefarm.library.cache import AudioCache
from voicefarm.settings import Settings
from voicefarm.store import db
from voicefarm.store.models import ClonedVoice, Job, new_id, utcnow
from voicefarm.store.objects import Store

log = logging.getLogger(__name__)


def prefix(voice_id: str, version: int | None = None) -> str:
    """Where a voice's objects live: its samples and the engines' speaker latents."""
    return f"voices/{voice_id}/" if version is None else f"voices/{voice_id}/v{version}/"


def latents_key(voice: Voice, engine: str, model_version: str) -> str:
    # Latents depend on the model as much as on the sample: a new model version computes anew.
    return f"{prefix(voice.id, int(voice.version))}latents/{engine}-{model_version}.bin"


def as_voice(row: ClonedVoice, settings: Settings) -> Voice:
    return Voice(
        id=row.id,
        language=row.language,
        name=row.name,
        sample_rate=settings.voice_sample_rate,
        version=str(row.version),
        cloned=True,
        fallback=row.fallback_voice,
    )


def owned(session: Session, tenant_id: str, voice_id: str) -> ClonedVoice | None:
    row = session.get(ClonedVoice, voice_id)
    return row if row is not None and row.tenant_id == tenant_id else None


def cloned_voice(session: Session, tenant_id: str, voice_id: str, settings: Settings) -> Voice | None:
    row = owned(session, tenant_id, voice_id)
    return as_voice(row, settings) if row is not None else None


def accept_sample(data: bytes, settings: Settings) -> tuple[bytes, reference.Analysis]:
    """Judge an upload; returns the sample as stored (mono FLAC) and its analysis."""
    if len(data) > settings.voice_max_upload_bytes:
        raise SampleTooLarge(f"the file is larger than the limit of {settings.voice_max_upload_bytes} bytes")
    samples, rate, fmt = reference.decode(data)
    analysis = reference.analyse(samples, rate, fmt)
    reference.judge(analysis, settings)
    return reference.normalise(samples, rate, settings.voice_sample_rate), analysis


def create(
    session: Session,
    store: Store,
    *,
    tenant_id: str,
    name: str,
    language: str,
    description: str | None,
    fallback_voice: str,
    sample: bytes,
    analysis: reference.Analysis,
) -> ClonedVoice:
    voice_id = new_id()
    row = ClonedVoice(
        id=voice_id,
        tenant_id=tenant_id,
        name=name,
        description=description,
        language=language,
        fallback_voice=fallback_voice,
        version=1,
        sample_key=f"{prefix(voice_id, 1)}sample.flac",
        analysis=asdict(analysis),
        consent_at=utcnow(),
    )
    session.add(row)
    store.put(row.sample_key, sample, "audio/flac")
    try:
        session.commit()
    except BaseException:
        store.delete_prefix(prefix(row.id))  # no row, no sample: nothing stored for a failed upload
        raise
    return row


def replace_sample(
    session: Session, store: Store, row: ClonedVoice, sample: bytes, analysis: reference.Analysis
) -> None:
    """A new sample is a new version: new content keys, so old audio is never served for it.
    The old sample and its latents go at once; audio made with it goes when the voice does."""
    old = row.version
    row.version = old + 1
    row.sample_key = f"{prefix(row.id, row.version)}sample.flac"
    row.analysis = asdict(analysis)
    row.consent_at = utcnow()
    store.put(row.sample_key, sample, "audio/flac")
    session.commit()
    store.delete_prefix(prefix(row.id, old))


def purge(session: Session, store: Store, cache: AudioCache, row: ClonedVoice) -> dict[str, int]:
    """Delete the voice and everything of it: samples, latents, renditions (objects, cache keys,
    rows) and the jobs that used it. Returns what was removed, for the caller's record."""
    removed = renditions.purge(session, store, cache, voice=row.id)
    jobs = db.changed(session, delete(Job).where(Job.voice == row.id))
    session.delete(row)
    session.commit()
    # Last, so a crash above leaves the row to retry the purge from.
    objects = store.delete_prefix(prefix(row.id))
    log.info("voice %s purged: %d renditions, %d jobs, %d sample/latent objects", row.id, removed, jobs, objects)
    return {"renditions": removed, "jobs": jobs, "objects": objects + removed}
