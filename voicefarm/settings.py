"""One settings object, read from `VOICEFARM_*` environment variables.

The defaults are the embedded farm: a filesystem broker, SQLite, a local object store and no
Redis, all under `data_dir`, so one machine runs the whole path with no servers. Production
points the same fields at Redis, PostgreSQL and an S3 endpoint.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_TIERS: dict[str, list[str]] = {
    "highest": ["styletts2", "xtts", "google", "piper"],
    "high": ["xtts", "styletts2", "google", "piper"],
    "medium": ["piper", "xtts", "google"],
    "fast": ["piper", "google"],
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICEFARM_", env_nested_delimiter="__")

    data_dir: Path = Path(".voicefarm")

    # Empty means "derive the embedded default from data_dir".
    database_url: str = ""
    broker_url: str = ""
    # Celery's result backend, which counts a document's finished segments for its join (a
    # chord); empty: the broker's Redis, or a folder under data_dir beside the filesystem broker.
    result_backend: str = ""
    redis_url: str = ""  # URL cache; empty disables it (the database still answers)
    # Namespaces every key this farm puts in Redis (cache and broker), so farms can share one.
    redis_prefix: str = "voicefarm"
    storage_url: str = ""  # file:///dir or s3://bucket[/prefix]

    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_presign_seconds: int = 3600

    api_host: str = "127.0.0.1"  # the address the API, and the metrics of workers and the reconciler, listen on
    api_port: int = 8000
    # Each worker, and the reconciler, serve the counts of their own work at
    # http://<api_host>:<port>/metrics (voicefarm.telemetry.counters), each kind on a port of its
    # own, since one host may run them all; 0: any free port, logged. `voicefarm up` gives each
    # process its own.
    metrics_port: int = 9101  # workers'
    reconciler_metrics_port: int = 9102
    public_url: str = ""  # how clients reach the API (for URLs in webhooks); default http://api_host:api_port
    batch_max_items: int = 10_000
    # Admission, per tenant: farm defaults that a tenant's row may override (`voicefarm tenants
    # set`). Over one, a submission is refused with a 429 and Retry-After, and nothing is kept.
    # Generous by default: they stop a runaway client, not normal use (voicefarm/tenancy/admission.py).
    max_active_jobs: int = Field(20_000, ge=1)  # queued plus running; a batch counts every item
    submissions_per_minute: int = Field(20_000, ge=1)  # cache hits and batch items count
    chars_per_day: int = Field(100_000_000, ge=1)  # characters asked for, cache hits included (UTC days)
    # shared: identical requests of all tenants share audio and one synthesis. private: each
    # tenant's audio and in-flight dedupe are its own, so no tenant can learn what another had
    # synthesized, at the cost of synthesizing the same speech once per tenant.
    cache_scope: Literal["shared", "private"] = "shared"
    # Internal networks callbacks may reach; none by default: see voicefarm/tenancy/targets.py.
    callback_allow_cidrs: list[str] = Field(default_factory=list)
    flower_basic_auth: str | None = None  # "user:password"; Flower will not start without it
    # Where the browser console's Ops page links each figure to the Grafana panel it mirrors
    # (deploy/grafana/dashboards/voicefarm.json); the default is compose's Grafana.
    grafana_url: str = "http://127.0.0.1:3000"
    # POST /v1/audio/speech, for OpenAI clients: model -> quality tier; OpenAI voice name -> farm
    # voice (one not listed speaks in default_voice); how long it waits for a job before a 504.
    openai_models: dict[str, str] = Field(
        default_factory=lambda: {"tts-1": "fast", "tts-1-hd": "high", "gpt-4o-mini-tts": "high"}
    )
    openai_voices: dict[str, str] = Field(default_factory=dict)
    openai_wait_seconds: float = 60.0
    # Live audio (voicefarm.jobs.feeds): entries a job's stream keeps at most (a piece is a sentence
    # or a chunk, so a text at max_text_chars stays far below), and how long it outlives its attempt.
    stream_max_entries: int = Field(10_000, ge=100)
    stream_ttl_seconds: float = Field(300.0, gt=0)

    engines: list[str] = Field(default_factory=lambda: ["piper"])
    # Third-party engines: name -> "module:factory", the factory taking these settings.
    plugins: dict[str, str] = Field(default_factory=dict)
    tiers: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_TIERS))
    default_voice: str = "en_US-joe-medium"
    default_quality: str = "fast"

    max_text_chars: int = 200_000
    # Long form (voicefarm/worker/documents.py): a longer text, or any SSML, is a document, split at
    # sentences into segments of at most this many characters (one engine call's worth) that the
    # engine's workers speak in parallel and one of them joins into one file.
    segment_chars: int = Field(2000, ge=100)
    # A failing segment is tried again on its engine this many times; then the whole document
    # moves down its chain, so it is never spoken in two voices.
    segment_retries: int = Field(1, ge=0)
    # A document longer than this runs its segments at batch priority: it never starves
    # interactive jobs.
    document_batch_chars: int = 10_000
    min_speed: float = 0.5
    max_speed: float = 2.0
    cache_ttl_seconds: int = 7 * 24 * 3600

    task_soft_time_limit: int = 120
    task_time_limit: int = 150
    # Per-engine overrides: name -> [soft, hard] seconds.
    engine_time_limits: dict[str, tuple[int, int]] = Field(default_factory=dict)
    # A job whose worker died is redelivered to the same engine this many times before it moves on.
    max_lost_per_engine: int = 1

    # Circuit breaker: an engine whose last `breaker_failures` attempts all failed, farm-wide, is
    # skipped by every chain for `breaker_cooldown_seconds`; then one job probes it again.
    breaker_failures: int = Field(5, ge=1)
    breaker_cooldown_seconds: float = 60.0
    # What a worker synthesizes (and gates) after loading its engine, before it takes a job.
    self_test_text: str = "This voice is ready."

    heartbeat_seconds: float = 5.0
    worker_dead_after_seconds: float = 15.0
    # A step of a job that cannot reach the database, Redis, the object store or the broker tries
    # again, with backoff, for this long before it gives up (voicefarm.store.outages); an outage
    # is never the engine's failure.
    outage_limit_seconds: float = Field(60.0, gt=0)
    # Re-enqueue a queued job whose broker message is gone after this long (broker restarts).
    reconcile_after_seconds: float = 30.0

    # Retention (voicefarm/library/retention/; `voicefarm gc`). Finished jobs, with their attempts, are
    # deleted this long after they finished, and a done batch with all its jobs; active jobs never.
    job_retention_days: int = Field(30, ge=1)
    # Audio (its renditions, objects, lossless master and cache entry) this long after its last use
    # (a cache hit, a job answered from it, a download), and never while a kept job points at it.
    # Longer than jobs: audio is what costs a synthesis to make again, and little to keep.
    audio_retention_days: int = Field(90, ge=1)
    # How long an expired job, batch or audio still answers "expired" rather than "no such".
    tombstone_retention_days: int = Field(90, ge=1)
    gc_interval_seconds: float = Field(3600.0, gt=0)  # the reconciler collects this often
    # An object with no record is collected only once it is this old, so a worker that has stored
    # audio and not yet recorded it is never raced: it must exceed the longest hard time limit.
    gc_orphan_grace_seconds: float = 24 * 3600.0

    # Optional quality gate: an ASR round trip (faster-whisper tiny.en) must come back within
    # this word error rate. Off when unset: it costs a second model per worker.
    quality_max_wer: float | None = None
    filesystem_polling_interval: float = 0.05

    # Uploaded reference samples (voice cloning): limits a sample must meet.
    voice_max_upload_bytes: int = 10 * 1024 * 1024
    voice_min_seconds: float = 3.0
    voice_recommended_seconds: float = 6.0
    voice_max_seconds: float = 30.0
    voice_min_sample_rate: int = 16000
    voice_min_snr_db: float = 15.0
    voice_max_clipping_ratio: float = 0.01
    voice_min_speech_ratio: float = 0.3
    voice_sample_rate: int = 24000  # stored samples are mono at this rate

    piper_voices_dir: Path | None = None  # extra *.onnx voices beside the bundled one
    # ONNX Runtime's threads per synthesis; unset, one per core. Several Piper workers on one
    # machine should split its cores between them, or their threads fight over them.
    piper_threads: int | None = Field(default=None, ge=1)
    # Whether ONNX Runtime's threads spin while they wait for work (its default): a little faster
    # alone, but on a machine shared with the farm's other processes the spinning takes the CPU
    # they need, and the worker waits on them in turn.
    piper_spin: bool = False

    # Google Cloud TTS: on where credentials are (this service-account key file, else application
    # default credentials); otherwise reported unavailable and skipped by chains.
    google_credentials_file: Path | None = None
    google_endpoint: str | None = None  # overrides the API endpoint, e.g. http://127.0.0.1:8080
    # Language (primary subtag, or a full tag that overrides it) -> Google voice name; empty: the
    # engine's defaults (voicefarm.engines.google.DEFAULT_VOICES).
    google_voices: dict[str, str] = Field(default_factory=dict)
    google_timeout_seconds: float = 10.0  # per call: the client sets none
    google_retries: int = 2  # further attempts after a 5xx or a refused connection, never after a 4xx or timeout
    google_sample_rate: int = 24000
    # Engines from their own packages (voicefarm_xtts, voicefarm_styletts2) read their own
    # settings (VOICEFARM_XTTS_*, VOICEFARM_STYLETTS2_*), in their workers only.

    @model_validator(mode="after")
    def _embedded_defaults(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'voicefarm.db'}"
        if not self.broker_url:
            self.broker_url = "filesystem://"
        if not self.result_backend:
            redis = self.broker_url.startswith(("redis://", "rediss://"))
            self.result_backend = self.broker_url if redis else (self.data_dir / "results").as_uri()
        if not self.storage_url:
            self.storage_url = (self.data_dir / "objects").as_uri()
        for cidr in self.callback_allow_cidrs:
            ipaddress.ip_network(cidr)  # a typo fails at start, not at the first callback
        for name, (soft, hard) in {
            "default": (self.task_soft_time_limit, self.task_time_limit),
            **self.engine_time_limits,
        }.items():
            if hard <= soft:
                raise ValueError(f"time limits for {name}: the hard limit {hard} must exceed the soft {soft}")
        if self.gc_orphan_grace_seconds <= self.longest_task:
            raise ValueError(
                f"gc_orphan_grace_seconds ({self.gc_orphan_grace_seconds:g}) must exceed the longest hard time "
                f"limit ({self.longest_task} s): a worker that has stored audio but not yet recorded it would be raced"
            )
        return self

    def time_limits(self, engine: str) -> tuple[int, int]:
        return self.engine_time_limits.get(engine, (self.task_soft_time_limit, self.task_time_limit))

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/") + "/"

    @property
    def longest_task(self) -> int:
        return max([self.task_time_limit, *(hard for _, hard in self.engine_time_limits.values())])


@lru_cache
def get_settings() -> Settings:
    return Settings()
