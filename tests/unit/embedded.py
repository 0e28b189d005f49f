"""An embedded farm in this process, for the lifecycle's unit tests: the settings it runs under
(tests/unit/conftest.py's `farm` fixture points them at a fresh SQLite database, object store
and filesystem broker in the test's tmp_path), the catalog its engines advertise, and small
helpers that submit requests and read back what the database holds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from voicefarm.engines.base import Capabilities, Voice
from voicefarm.fleet import heartbeat
from voicefarm.fleet.catalog import Catalog
from voicefarm.jobs import plans, recording
from voicefarm.jobs.lifecycle import Run
from voicefarm.library.cache import CachedAudio, get_cache
from voicefarm.settings import Settings, get_settings
from voicefarm.store import db
from voicefarm.store.models import Batch, Breaker, Job, Worker, utcnow
from voicefarm.store.objects import get_store
from voicefarm.tenancy import admission

TENANT, OTHER = "tenant-a", "tenant-b"
ENGINES = ["xtts", "styletts2", "piper"]
# Chains of every shape the tests need: three engines, two, one.
TIERS = {"best": ["xtts", "styletts2", "piper"], "pair": ["xtts", "piper"], "piper": ["piper"]}
VOICE = Voice("en_US-test-medium", "en-US")

# The farm fixture's settings, as the environment gives them.
ENV = {
    "VOICEFARM_ENGINES": json.dumps(ENGINES),
    "VOICEFARM_TIERS": json.dumps(TIERS),
    "VOICEFARM_DEFAULT_QUALITY": "pair",
    "VOICEFARM_DEFAULT_VOICE": VOICE.id,
    "VOICEFARM_BREAKER_FAILURES": "3",
    "VOICEFARM_SEGMENT_CHARS": "100",  # the smallest segment: a few sentences make a document
}


@dataclass(frozen=True)
class Ask:
    """A request as the API would take it (plans.Request)."""

    text: str
    quality: str | None = None
    voice: str | None = None
    language: str | None = None
    format: str = "wav"
    speed: float = 1.0
    sample_rate: int | None = None
    timestamps: bool = False


def catalog(settings: Settings) -> Catalog:
    """Every engine speaks the one voice, each under its own model version."""
    caps = Capabilities(frozenset({"en"}), (VOICE,), model_version="1")
    return Catalog(settings, dict.fromkeys(ENGINES, caps))


def plan(text: str, quality: str = "pair", **fields: Any) -> plans.Plan:
    settings = get_settings()
    return plans.plan(Ask(text, quality, **fields), VOICE, settings, catalog(settings))


def live(*engines: str) -> None:
    """A worker of each engine beats (fleet.heartbeat), so chains may route to it."""
    for engine in engines:
        heartbeat.beat(f"{engine}@test:1", engine, {})


def dead(engine: str) -> None:
    """The engine's worker stopped beating long ago."""
    with db.session() as s:
        s.execute(update(Worker).where(Worker.engine == engine).values(last_seen=utcnow() - timedelta(hours=1)))


def request(text: str, quality: str = "pair", tenant: str = TENANT, **extra: Any) -> tuple[Job | CachedAudio, bool]:
    """Submit as the API does; (job or cached audio, whether it must be sent)."""
    p = plan(text, quality)
    with db.session() as s:
        return recording.record(
            s, get_cache(), get_store(), tenant, p, live=heartbeat.available(s, get_settings()), **extra
        )


def new_job(text: str, quality: str = "pair", tenant: str = TENANT, **extra: Any) -> Job:
    job, send = request(text, quality, tenant, **extra)
    assert isinstance(job, Job) and send, "a new job that leads its own synthesis"
    return job


def follower(text: str, quality: str = "pair", tenant: str = TENANT, **extra: Any) -> Job:
    job, send = request(text, quality, tenant, **extra)
    assert isinstance(job, Job) and not send and job.leader_id is not None, "a follower, not sent"
    return job


def batch(texts: list[str], quality: str = "pair", callback_url: str | None = None) -> tuple[str, list[Job]]:
    """Record a batch as the API does; its id and the jobs it must send."""
    with db.session() as s:
        settings = get_settings()
        recorded, to_send = recording.record_batch(
            s,
            get_cache(),
            get_store(),
            TENANT,
            [plan(text, quality) for text in texts],
            live=heartbeat.available(s, settings),
            callback_url=callback_url,
            policy=admission.policy(s, TENANT, settings),
        )
        return recorded.id, to_send


def audio(run: Run, engine: str) -> CachedAudio:
    """What a worker stored for a run (the bookkeeping never reads the object itself)."""
    object_key = f"audio/{run.key}.{run.format}"
    return CachedAudio(run.key, object_key, f"file:///objects/{object_key}", engine, run.format, 1.25, 22050)


def job(job_id: str) -> Job:
    """The job as the database holds it now, with its attempts and segments."""
    with db.session() as s:
        found = s.scalars(
            select(Job)
            .where(Job.id == job_id)
            .options(selectinload(Job.attempts), selectinload(Job.segments))
            .execution_options(populate_existing=True)
        ).one()
        s.expunge_all()
        return found


def attempts(job_id: str) -> list[tuple[str, str]]:
    return [(a.engine, a.outcome) for a in job(job_id).attempts]


def batch_row(batch_id: str) -> Batch:
    with db.session() as s:
        found = s.get(Batch, batch_id)
        assert found is not None
        return found


def breaker_row(engine: str) -> Breaker | None:
    with db.session() as s:
        return s.get(Breaker, engine)


def broker_messages(settings: Settings) -> list[tuple[str, dict[str, Any]]]:
    """(queue, headers) of each message waiting in the filesystem broker, oldest first."""
    folder = Path(settings.data_dir) / "broker" / "queue"
    found = []
    for path in sorted(folder.glob("*.msg")):
        queue = path.name.removesuffix(".msg").split(".", 1)[1]
        found.append((queue, json.loads(path.read_text())["headers"]))
    return found
