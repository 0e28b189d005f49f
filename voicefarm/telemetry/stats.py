"""What the farm is doing now, read from the database and the broker: one source for /metrics
and the admin endpoints. Every query reads only active jobs, or a bounded window of recent
ones, through an index: its cost does not grow with the history. What happened over time
is counted by the processes that did it (voicefarm.telemetry.counters)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CompoundSelect, Float, case, cast, func, literal, select, union_all
from sqlalchemy.orm import Session

from voicefarm.dispatch import brokers
from voicefarm.schemas import EngineRates, RatesOut
from voicefarm.settings import Settings
from voicefarm.store.models import ACTIVE, Attempt, Job, JobStatus, Outcome

RECENT_JOBS = 100  # the window /v1/engines averages over, per engine

# Queued and running jobs by state and engine, through ix_jobs_status.
ACTIVE_JOBS = (
    select(Job.status, Job.engine, func.count()).where(Job.status.in_(ACTIVE)).group_by(Job.status, Job.engine)
)


def active_jobs(s: Session) -> dict[tuple[str, str], int]:
    return {(state, engine): n for state, engine, n in s.execute(ACTIVE_JOBS)}


def recent(engines: list[str]) -> CompoundSelect[str, Any, Any]:
    """Per engine, mean synthesis seconds and real-time factor of its last RECENT_JOBS syntheses
    (ix_jobs_synthesized): how the engine does now, not since it was installed. One round trip."""
    parts = []
    for engine in engines:
        window = (
            select(Job.synthesis_seconds.label("seconds"), Job.duration.label("duration"))
            .where(Job.engine == engine, Job.leader_id.is_(None), Job.synthesis_seconds.is_not(None))
            .order_by(Job.finished_at.desc())
            .limit(RECENT_JOBS)
            .subquery()
        )
        rtf = window.c.seconds / cast(func.nullif(window.c.duration, 0), Float)
        parts.append(select(literal(engine), func.avg(window.c.seconds), func.avg(rtf)))
    return union_all(*parts)


def recent_means(s: Session, engines: list[str]) -> dict[str, tuple[float | None, float | None]]:
    if not engines:
        return {}
    return {
        engine: (None if seconds is None else float(seconds), None if rtf is None else float(rtf))
        for engine, seconds, rtf in s.execute(recent(engines))
    }


def queue_depths(settings: Settings) -> dict[str, int]:
    """Messages waiting on each engine's queue."""
    return brokers.for_settings(settings).queue_depths(settings.engines)


RATE_WINDOW = timedelta(hours=1)  # what GET /v1/rates counts over


def recent_rates(s: Session, now: datetime) -> RatesOut:
    """Attempts, failures and fallbacks per engine, and finished and failed jobs, over the
    RATE_WINDOW before `now`: range scans of ix_attempts_finished_at and ix_jobs_finished_at,
    so the cost is the window's work, never the history's."""
    since = now - RATE_WINDOW
    failed = Attempt.outcome.in_([Outcome.failed.value, Outcome.lost.value])
    per_engine = s.execute(
        select(
            Attempt.engine,
            func.count(),
            func.count(case((failed, 1))),
            func.count(Attempt.rerouted_to),
        )
        .where(Attempt.finished_at >= since)
        .group_by(Attempt.engine)
    )
    jobs = dict(
        s.execute(
            select(Job.status, func.count())
            .where(Job.finished_at >= since, Job.status.in_([JobStatus.succeeded.value, JobStatus.failed.value]))
            .group_by(Job.status)
        ).all()
    )
    return RatesOut(
        window_seconds=int(RATE_WINDOW.total_seconds()),
        engines={engine: EngineRates(attempts=n, failed=bad, fallbacks=moved) for engine, n, bad, moved in per_engine},
        jobs_finished=sum(jobs.values()),
        jobs_failed=jobs.get(JobStatus.failed.value, 0),
    )
