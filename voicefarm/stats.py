"""What the farm is doing, read from the database and the broker: one source for /metrics and
the admin endpoints. The database is the record, so every API replica reports the same."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, case, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from voicefarm import broker
from voicefarm.models import Attempt, Job, JobStatus
from voicefarm.settings import Settings

SYNTHESIS_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
RTF_BUCKETS = (0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10)
LATENCY_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)

Histogram = dict[str, tuple[list[int], float, int]]  # engine -> (cumulative bucket counts, sum, count)


def jobs_by_state(s: Session) -> dict[tuple[str, str], int]:
    return {
        (state, engine): n
        for state, engine, n in s.execute(select(Job.status, Job.engine, func.count()).group_by(Job.status, Job.engine))
    }


def attempts_by_outcome(s: Session) -> dict[tuple[str, str], int]:
    return {
        (engine, outcome): n
        for engine, outcome, n in s.execute(
            select(Attempt.engine, Attempt.outcome, func.count()).group_by(Attempt.engine, Attempt.outcome)
        )
    }


def fallbacks(s: Session) -> dict[tuple[str, str], int]:
    rows = s.execute(
        select(Attempt.engine, Attempt.rerouted_to, func.count())
        .where(Attempt.rerouted_to.is_not(None))
        .group_by(Attempt.engine, Attempt.rerouted_to)
    )
    return {(src, dst or ""): n for src, dst, n in rows}


def _seconds_between(start: Any, end: Any, dialect: str) -> ColumnElement[Any]:
    if dialect == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return func.extract("epoch", end - start)


def histogram(s: Session, value: Any, buckets: tuple[float, ...]) -> Histogram:
    """A cumulative histogram of `value` over finished synthesis jobs, per engine, in one query."""
    columns = [func.sum(case((value <= b, 1), else_=0)) for b in buckets]
    query = (
        select(Job.engine, *columns, func.sum(value), func.count())
        .where(Job.status == JobStatus.succeeded.value, Job.leader_id.is_(None), Job.synthesis_seconds.is_not(None))
        .group_by(Job.engine)
    )
    return {row[0]: ([int(c or 0) for c in row[1:-2]], float(row[-2] or 0), int(row[-1])) for row in s.execute(query)}


def synthesis_seconds(s: Session) -> Histogram:
    return histogram(s, Job.synthesis_seconds, SYNTHESIS_BUCKETS)


def real_time_factor(s: Session) -> Histogram:
    return histogram(s, Job.synthesis_seconds / cast(Job.duration, Float), RTF_BUCKETS)


def job_latency(s: Session) -> Histogram:
    dialect = s.get_bind().dialect.name
    return histogram(s, _seconds_between(Job.created_at, Job.finished_at, dialect), LATENCY_BUCKETS)


def characters(s: Session) -> dict[tuple[str, str], int]:
    """Characters synthesized per engine and tenant (cost tracking: what cloud engines bill)."""
    rows = s.execute(
        select(Job.engine, Job.tenant_id, func.sum(func.length(Job.text)))
        .where(Job.status == JobStatus.succeeded.value, Job.leader_id.is_(None), Job.synthesis_seconds.is_not(None))
        .group_by(Job.engine, Job.tenant_id)
    )
    return {(engine, tenant): int(n or 0) for engine, tenant, n in rows}


def queue_depths(settings: Settings) -> dict[str, int]:
    """Messages waiting on each engine's queue."""
    return broker.for_settings(settings).queue_depths(settings.engines)
