"""What the work itself counts: attempts, fallbacks, finished jobs, synthesis time, real-time
factor, latency and characters. The process that records a transition counts it, once its
transaction commits: a worker's pool child for its own runs, the worker's main process for the
`lost` errback, the reconciler for what it does. Each of them serves its counts over HTTP
(`voicefarm.telemetry.exporter`), so a scrape never reads the database and costs the same after ten
million jobs as after one. The API's /metrics keeps only gauges of the farm's present state
(`voicefarm.telemetry.metrics`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import event
from sqlalchemy.orm import Session

from voicefarm.library.cache import CachedAudio
from voicefarm.settings import Settings
from voicefarm.store.models import Job, JobStatus, Outcome

SYNTHESIS_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
RTF_BUCKETS = (0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10)
LATENCY_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)

# Registered nowhere: the exporter reads every process's values from the multiprocess files.
attempts = Counter(
    "voicefarm_attempts", "Synthesis attempts by engine and outcome", ["engine", "outcome"], registry=None
)
fallbacks = Counter(
    "voicefarm_fallbacks", "Jobs moved from one engine to the next", ["from_engine", "to_engine"], registry=None
)
jobs_finished = Counter(
    "voicefarm_jobs_finished", "Jobs by final state and the engine they ended on", ["engine", "state"], registry=None
)
synthesis_seconds = Histogram(
    "voicefarm_synthesis_seconds", "Engine time per job", ["engine"], buckets=SYNTHESIS_BUCKETS, registry=None
)
real_time_factor = Histogram(
    "voicefarm_real_time_factor", "Synthesis seconds per audio second", ["engine"], buckets=RTF_BUCKETS, registry=None
)
job_latency = Histogram(
    "voicefarm_job_latency_seconds", "Submission to finished audio", ["engine"], buckets=LATENCY_BUCKETS, registry=None
)
characters = Counter(
    "voicefarm_tts_characters", "Characters synthesized, for cost tracking", ["engine", "tenant"], registry=None
)
reconciled = Counter(
    "voicefarm_reconciled_jobs", "Jobs re-enqueued because their broker message was lost", ["engine"], registry=None
)
recovered = Counter(
    "voicefarm_recovered_jobs", "Jobs sent again because no live worker ran them", ["engine"], registry=None
)
# 0 until the first pass succeeds: a reconciler that never has is as stale as one that stopped.
reconciled_at = Gauge(
    "voicefarm_reconcile_last_success_timestamp_seconds",
    "Unix time of the reconciler's last successful pass",
    registry=None,
    multiprocess_mode="max",  # the reconciler's own process sets it; a later pass has a later time
)

FINAL_OUTCOMES = (Outcome.succeeded.value, Outcome.failed.value, Outcome.lost.value, Outcome.canceled.value)
FINAL_STATES = (JobStatus.succeeded.value, JobStatus.failed.value, JobStatus.canceled.value)


def on_commit(s: Session, count: Callable[[], object]) -> None:
    """Count once the session's transaction commits: a transition rolled back (the database
    went away) is done again later, and counted then."""
    event.listen(s, "after_commit", lambda _: count(), once=True)


def synthesized(s: Session, job: Job, audio: CachedAudio, seconds: float, finished: datetime) -> None:
    """Count a synthesis once the transaction that records it commits: its attempt, its engine
    time and real-time factor, its job's latency, and its characters."""
    engine, tenant, chars = audio.engine, job.tenant_id, len(job.text)
    latency = (finished - job.created_at).total_seconds()

    def count() -> None:
        attempts.labels(engine, Outcome.succeeded.value).inc()
        synthesis_seconds.labels(engine).observe(seconds)
        if audio.duration > 0:
            real_time_factor.labels(engine).observe(seconds / audio.duration)
        job_latency.labels(engine).observe(latency)
        characters.labels(engine, tenant).inc(chars)

    on_commit(s, count)


def initialise_worker(engine: str, settings: Settings) -> None:
    """Create, at zero, the series a worker of `engine` will report, so that they exist from its
    start: a worker that has not failed yet shows a failure rate of 0, not no series."""
    for outcome in FINAL_OUTCOMES:
        attempts.labels(engine, outcome)
    for state in FINAL_STATES:
        jobs_finished.labels(engine, state)
    for histogram in (synthesis_seconds, real_time_factor, job_latency):
        histogram.labels(engine)
    after = {
        later for chain in settings.tiers.values() if engine in chain for later in chain[chain.index(engine) + 1 :]
    }
    for later in sorted(after):
        fallbacks.labels(engine, later)


def initialise_reconciler(settings: Settings) -> None:
    """Create, at zero, the series the reconciler reports."""
    for engine in settings.engines:
        reconciled.labels(engine)
        recovered.labels(engine)
