"""Retention on the embedded farm: SQLite, the local object store and no Redis, so each use is
written on the rendition's record itself. The job is finished by the real lifecycle, as a
worker would finish it; age is simulated by backdating rows and files."""

from __future__ import annotations

import os
import time
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from voicefarm.jobs import lifecycle
from voicefarm.library import retention
from voicefarm.library.cache import CachedAudio
from voicefarm.library.renditions import master_key
from voicefarm.settings import get_settings
from voicefarm.store import db
from voicefarm.store.models import Job, Rendition, utcnow
from voicefarm.store.objects import LocalStore, get_store


def last_used(content_key: str) -> timedelta:
    with db.session() as s:
        row = s.get(Rendition, content_key)
        assert row is not None
        return utcnow() - row.last_used_at


def unused_for_months(content_key: str) -> None:
    with db.session() as s:
        s.execute(
            update(Rendition)
            .where(Rendition.content_key == content_key)
            .values(last_used_at=utcnow() - timedelta(days=91))
        )


def test_embedded_farm_expires_jobs_audio_and_unrecorded_files(http: TestClient) -> None:
    body = {"text": "Kept on the embedded farm, for a while."}
    job = http.post("/v1/jobs", json=body).json()
    run = lifecycle.begin(job["id"], "piper", "api-tests:1")
    assert run is not None
    store = get_store()
    assert isinstance(store, LocalStore)
    object_key = f"audio/{run.key}.wav"
    store.put(object_key, b"RIFF....WAVE", "audio/wav")
    store.put(master_key(run.source), b"fLaC....", "audio/flac")
    audio = CachedAudio(run.key, object_key, store.url(object_key), "piper", "wav", 1.5, 22050)
    assert lifecycle.finish(job["id"], run.attempt_id, audio=audio, seconds=0.2)

    unused_for_months(run.key)
    hit = http.post("/v1/jobs", json=body)
    assert hit.status_code == 200 and hit.json()["cache"] == "hit"
    assert last_used(run.key) < timedelta(minutes=1)  # answered from it: a use
    unused_for_months(run.key)
    assert http.get(f"/v1/audio/{run.key}.wav").content == b"RIFF....WAVE"
    assert last_used(run.key) < timedelta(minutes=1)  # downloaded: a use

    unused_for_months(run.key)
    with db.session() as s:
        s.execute(update(Job).where(Job.id == job["id"]).values(finished_at=utcnow() - timedelta(days=31)))
    interrupted, fresh = store.root / "audio" / ".tmp-3kq8z0w1", store.root / "audio" / f"{'0' * 64}.wav"
    interrupted.write_bytes(b"half a file")
    fresh.write_bytes(b"just stored, not yet recorded")
    then = time.time() - get_settings().gc_orphan_grace_seconds - 60
    os.utime(interrupted, (then, then))

    dry = retention.collect(get_settings(), dry_run=True)
    expected = (1, 1, 1, 12, 1, 8, 1, 11)
    counts = ("jobs", "attempts", "audio", "audio_bytes", "masters", "master_bytes", "orphans", "orphan_bytes")
    assert tuple(getattr(dry, name) for name in counts) == expected
    assert store.exists(object_key) and interrupted.exists()

    report = retention.collect(get_settings())
    assert tuple(getattr(report, name) for name in counts) == expected
    assert not store.exists(object_key) and not store.exists(master_key(run.source))
    assert not interrupted.exists() and fresh.exists()
    gone = http.get(f"/v1/jobs/{job['id']}")
    assert gone.status_code == 404 and gone.json()["error"].startswith(f"job {job['id']} expired on ")
    audio_gone = http.get(f"/v1/audio/{run.key}.wav")
    assert audio_gone.status_code == 404 and "VOICEFARM_AUDIO_RETENTION_DAYS=90" in audio_gone.json()["error"]
    fresh.unlink()
