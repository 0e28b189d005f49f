"""Database tables. The job row, not Celery's result backend, is the source of truth."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy import text as sql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


@dataclass(frozen=True)
class Link:
    """One engine of a job's chain, stored in the job row as JSON."""

    engine: str
    voice: str  # the voice that engine speaks: a cloned voice's fallback on an engine that cannot clone
    cloned: bool
    key: str  # the content key of the file this engine would make
    source: str  # the source key of its speech, which keys the lossless master

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every database: SQLite stores none and would hand back naive times."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"  # its owner no longer wants it (voicefarm.jobs.cancel)


class Outcome(StrEnum):
    """An attempt's: running until it reports, `lost` when its worker died under it, `canceled`
    when its job was canceled while it ran."""

    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    lost = "lost"
    canceled = "canceled"


class BatchStatus(StrEnum):
    running = "running"
    done = "done"


ACTIVE = (JobStatus.queued.value, JobStatus.running.value)
# The same, as SQL with its values written out: a query that must use a partial index on active
# jobs says it this way, since with bound values a prepared (generic) plan cannot use the index.
IS_ACTIVE = "status IN ('queued', 'running')"


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    webhook_secret: Mapped[str | None] = mapped_column(String(100))  # signs the tenant's callbacks
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Admission overrides (voicefarm.tenancy.admission); NULL takes the farm's setting of the same name.
    max_active_jobs: Mapped[int | None] = mapped_column(Integer)
    submissions_per_minute: Mapped[int | None] = mapped_column(Integer)
    chars_per_day: Mapped[int | None] = mapped_column(BigInteger)
    cache_scope: Mapped[str | None] = mapped_column(String(8))  # shared or private
    # Mixed into the keys of a private cache's audio, so that no other tenant can compute them
    # (and ask GET /v1/audio/{key} whether this tenant had that text synthesized).
    cache_salt: Mapped[str] = mapped_column(String(32), default=lambda: secrets.token_hex(16))


class ApiKey(Base):
    __tablename__ = "api_keys"

    # Only the sha256 of a key is stored: a leaked database does not leak usable keys.
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ClonedVoice(Base):
    """An uploaded reference sample a tenant can synthesize in. The sample is biometric data:
    deleting the voice purges it and everything made from it."""

    __tablename__ = "voices"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(16))
    fallback_voice: Mapped[str] = mapped_column(String(200))  # built-in voice for non-cloning engines
    version: Mapped[int] = mapped_column(Integer, default=1)  # bumped when the sample is replaced
    sample_key: Mapped[str] = mapped_column(String(300))
    analysis: Mapped[dict[str, Any]] = mapped_column(JSON)
    consent_at: Mapped[datetime] = mapped_column()  # when the uploader attested the speaker agreed
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Batch(Base):
    """Many jobs submitted together (pre-generation); its state is its jobs' states."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=BatchStatus.running.value)
    total: Mapped[int] = mapped_column(Integer)
    callback_url: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()

    # A tenant's latest batches (GET /v1/batches), whatever its history.
    __table_args__ = (Index("ix_batches_tenant_created", "tenant_id", "created_at"),)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.queued.value, index=True)

    text: Mapped[str] = mapped_column(Text)
    voice: Mapped[str] = mapped_column(String(200))
    voice_version: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16))
    quality: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(8))
    speed: Mapped[float] = mapped_column(Float, default=1.0)
    output_rate: Mapped[int | None] = mapped_column(Integer)  # the rate asked for; None: the engine's

    # The engines to try, in order: Link, as JSON.
    chain: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    engine: Mapped[str] = mapped_column(String(32))  # the engine it is on (or finished on)
    # The number of the job's current broker message. Each send takes the next number, and a
    # message carrying an older one is stale (a late redelivery after the job was sent again):
    # it finds nothing to do, so one job never runs twice at once.
    dispatch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A long text, spoken in segments by many workers and joined (voicefarm.worker.documents).
    document: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql("false"))
    content_key: Mapped[str] = mapped_column(String(64), index=True)
    # A job that found an identical request in flight waits on that one's synthesis.
    leader_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), index=True)

    # Indexed: retention keeps audio that a job still points at.
    object_key: Mapped[str | None] = mapped_column(String(300), index=True)
    duration: Mapped[float | None] = mapped_column(Float)
    sample_rate: Mapped[int | None] = mapped_column(Integer)
    synthesis_seconds: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)

    # A client's retry of the same POST (same tenant, same key) gets the first job back.
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    batch_index: Mapped[int | None] = mapped_column(Integer)
    callback_url: Mapped[str | None] = mapped_column(String(2000))
    # Asked for word timestamps: its speech is aligned once it succeeds (voicefarm.audio.alignment).
    timestamps: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql("false"))

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column(index=True)  # retention counts from here
    # When its owner canceled it. A job that others follow keeps its synthesis going for them
    # with its status as it was, and shows as canceled (`shown_status`) until it ends.
    canceled_at: Mapped[datetime | None] = mapped_column()

    @property
    def shown_status(self) -> str:
        return JobStatus.canceled.value if self.canceled_at is not None else self.status

    @property
    def links(self) -> list[Link]:
        return [Link(**entry) for entry in self.chain]

    @property
    def link(self) -> Link:
        """The chain's link for the engine the job is on."""
        return next(link for link in self.links if link.engine == self.engine)

    @property
    def spoken(self) -> str:
        """The words it says: a document's segments (its text is kept as sent, SSML or
        Markdown), else its text."""
        return " ".join(segment.text for segment in self.segments) if self.document and self.segments else self.text

    attempts: Mapped[list[Attempt]] = relationship(
        back_populates="job", order_by="Attempt.id", cascade="all, delete-orphan"
    )
    segments: Mapped[list[Segment]] = relationship(order_by="Segment.position", cascade="all, delete-orphan")

    __table_args__ = (
        # At most one synthesis in flight per content key: a concurrent identical request
        # fails this insert and becomes a follower instead of a second synthesis.
        Index(
            "uq_jobs_inflight_key",
            "content_key",
            unique=True,
            postgresql_where=sql("leader_id IS NULL AND status IN ('queued', 'running')"),
            sqlite_where=sql("leader_id IS NULL AND status IN ('queued', 'running')"),
        ),
        Index("uq_jobs_idempotency", "tenant_id", "idempotency_key", unique=True),
        # A tenant's latest jobs (GET /v1/jobs), whatever its history.
        Index("ix_jobs_tenant_created", "tenant_id", "created_at"),
        # A tenant's active jobs, for its admission limit and its fair priority (jobs/fairness):
        # only active rows are in it, so counting them costs the same with any history.
        Index("ix_jobs_active_tenant", "tenant_id", postgresql_where=sql(IS_ACTIVE), sqlite_where=sql(IS_ACTIVE)),
        # Each engine's latest syntheses, for /v1/engines whatever the history (partial: only
        # what it serves). Active jobs are found through ix_jobs_status.
        Index(
            "ix_jobs_synthesized",
            "engine",
            "finished_at",
            postgresql_where=sql("leader_id IS NULL AND synthesis_seconds IS NOT NULL"),
            sqlite_where=sql("leader_id IS NULL AND synthesis_seconds IS NOT NULL"),
        ),
    )


class Attempt(Base):
    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    engine: Mapped[str] = mapped_column(String(32))
    worker: Mapped[str] = mapped_column(String(200), default="")
    outcome: Mapped[str] = mapped_column(String(16), default=Outcome.running.value)
    error: Mapped[str | None] = mapped_column(Text)
    rerouted_to: Mapped[str | None] = mapped_column(String(32))  # the engine the job moved on to
    segment: Mapped[int | None] = mapped_column(Integer)  # a document's segment it spoke; None: the job
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Indexed: GET /v1/rates counts the last hour's attempts, whatever the history.
    finished_at: Mapped[datetime | None] = mapped_column(index=True)

    job: Mapped[Job] = relationship(back_populates="attempts")


class Segment(Base):
    """One segment of a document: its text, the pause after it, and where it stands on the
    current dispatch. Its audio is keyed like a job's (per engine: `sources`), so it is stored
    once and shared by every document, and every job, that says the same."""

    __tablename__ = "segments"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    pause: Mapped[float] = mapped_column(Float)  # seconds of silence after it
    sources: Mapped[dict[str, str]] = mapped_column(JSON)  # engine -> source key of its speech there
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)  # its audio existed: not synthesized
    synthesis_seconds: Mapped[float | None] = mapped_column(Float)


class Worker(Base):
    """A live worker process, as its heartbeat says: chains skip engines with none. A worker
    whose engine failed its self-test leaves a row with the reason instead, and never beats."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    engine: Mapped[str] = mapped_column(String(32), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    # Why the worker cannot serve ("failed self-test: …", "unavailable: …"); None: it passed.
    self_test: Mapped[str | None] = mapped_column(Text)
    # What its engine advertised (Capabilities.to_json, plus "self_test"): voices, languages,
    # cloning, model version, device.
    capabilities: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The task ids (voicefarm.dispatch.app.job_of) the worker held at its last beat, `last_seen`:
    # an attempt it began before then and no longer holds is one nobody runs. None: no beat yet.
    jobs: Mapped[list[str] | None] = mapped_column(JSON)


class EngineCapabilities(Base):
    """An engine's last known capabilities, from its most recently started healthy worker. The
    API's catalog is built from these rows: an engine whose workers are all gone keeps its
    voices and its place in the chains, and its jobs wait in its queue."""

    __tablename__ = "engine_capabilities"

    engine: Mapped[str] = mapped_column(String(32), primary_key=True)
    capabilities: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Breaker(Base):
    """An engine's circuit breaker, shared by the whole farm: consecutive failed attempts, and
    while it is open (`until` set) the end of its cool-down. No row: closed, no failures."""

    __tablename__ = "breakers"

    engine: Mapped[str] = mapped_column(String(32), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(Text)  # the last failure
    opened_at: Mapped[datetime | None] = mapped_column()
    until: Mapped[datetime | None] = mapped_column()


class Rendition(Base):
    """The durable record of a stored audio object; Redis caches the same mapping."""

    __tablename__ = "renditions"

    content_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    source_key: Mapped[str] = mapped_column(String(64), index=True)  # its lossless master's key
    object_key: Mapped[str] = mapped_column(String(300))
    url: Mapped[str] = mapped_column(String(1000))
    engine: Mapped[str] = mapped_column(String(32))
    voice: Mapped[str] = mapped_column(String(200), index=True)
    format: Mapped[str] = mapped_column(String(8))
    duration: Mapped[float] = mapped_column(Float)
    sample_rate: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When it last answered a request. A cache hit notes its use in Redis only (no database write
    # on the hot path); the collector folds those in before it decides what has expired.
    last_used_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Alignment(Base):
    """When each word of a speech is heard: keyed, like its lossless master, by source key, so
    every job and rendition of the same speech shares one alignment, and cached audio is never
    aligned twice. It goes with the master (voicefarm.library.retention.collector, renditions.purge)."""

    __tablename__ = "alignments"

    source_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))  # engine, aligned or estimated
    words: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{"text", "start", "end"}], seconds
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Tombstone(Base):
    """What is left of an expired job, batch or audio: enough to answer "expired" rather than
    "no such" to the tenant it belonged to, until the tombstone expires in turn."""

    __tablename__ = "tombstones"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # job, batch or audio
    id: Mapped[str] = mapped_column(String(300), primary_key=True)  # for audio, its name: <content key>.<format>
    # None for audio: any tenant may fetch audio by its name, as before it expired.
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    expired_at: Mapped[datetime] = mapped_column(index=True)
