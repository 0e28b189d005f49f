"""The farm's circuit breaker: an engine that keeps failing is taken out of every chain for a
cool-down, then one job probes it.

State lives in the database (the `breakers` table), so every API replica and worker sees the
same: consecutive failed attempts per engine, and while the breaker is open, the end of its
cool-down. A success closes it. Once the cool-down has passed, the first job routed to the
engine claims the probe with one conditional UPDATE, which also starts a new cool-down, so
only that job goes there until it has reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from voicefarm.settings import Settings
from voicefarm.store.db import changed, upsert
from voicefarm.store.models import Breaker, utcnow

log = logging.getLogger(__name__)


def tripped(s: Session) -> dict[str, Breaker]:
    """Open breakers (in cool-down, or waiting for their probe), by engine."""
    return {b.engine: b for b in s.scalars(select(Breaker).where(Breaker.until.is_not(None)))}


def failed(s: Session, engine: str, error: str, settings: Settings) -> None:
    """Count a failed attempt; open (or keep open) the breaker at `breaker_failures` in a row."""
    stmt = upsert(s, Breaker).values(engine=engine, failures=1, reason=error)
    stmt = stmt.on_conflict_do_update(
        index_elements=[Breaker.engine], set_={"failures": Breaker.failures + 1, "reason": error}
    )
    failures = s.execute(stmt.returning(Breaker.failures)).scalar_one()
    if failures >= settings.breaker_failures:
        now = utcnow()
        until = now + timedelta(seconds=settings.breaker_cooldown_seconds)
        opened = changed(
            s,
            update(Breaker).where(Breaker.engine == engine, Breaker.until.is_(None)).values(until=until, opened_at=now),
        )
        if opened:
            log.warning("engine %s degraded after %d failures in a row: %s", engine, failures, error)
        else:  # already open (a failed probe, or jobs that were in flight): cool down again
            s.execute(update(Breaker).where(Breaker.engine == engine).values(until=until))


def succeeded(s: Session, engine: str) -> None:
    """A success closes the breaker and forgets the failures."""
    s.execute(delete(Breaker).where(Breaker.engine == engine))


def claim_probe(s: Session, engine: str, settings: Settings) -> bool:
    """Whether this job is the one that probes an engine whose cool-down has passed."""
    now = utcnow()
    return bool(
        changed(
            s,
            update(Breaker)
            .where(Breaker.engine == engine, Breaker.until <= now)
            .values(until=now + timedelta(seconds=settings.breaker_cooldown_seconds)),
        )
    )


@dataclass(frozen=True)
class Available:
    """Where a job may go now: engines with a live worker whose breaker lets it through."""

    settings: Settings
    live: frozenset[str]
    open_until: dict[str, datetime] = field(default_factory=dict)

    def usable(self, s: Session, engine: str) -> bool:
        if engine not in self.live:
            return False
        until = self.open_until.get(engine)
        return until is None or (until <= utcnow() and claim_probe(s, engine, self.settings))
