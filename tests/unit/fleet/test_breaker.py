"""The circuit breaker's state machine, on an in-memory SQLite database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, update
from sqlalchemy.orm import Session

from voicefarm.fleet import breaker
from voicefarm.settings import Settings
from voicefarm.store.models import Base, Breaker, utcnow

SETTINGS = Settings(breaker_failures=3, breaker_cooldown_seconds=60)


@pytest.fixture
def s() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        yield session


def cool_down_ends(s: Session, engine: str) -> None:
    s.execute(update(Breaker).where(Breaker.engine == engine).values(until=utcnow() - timedelta(seconds=1)))


def available(s: Session) -> breaker.Available:
    return breaker.Available(
        SETTINGS, frozenset({"xtts", "piper"}), {e: b.until for e, b in breaker.tripped(s).items()}
    )


def test_failures_in_a_row_open_it_and_a_success_closes_it(s: Session) -> None:
    for _ in range(2):
        breaker.failed(s, "xtts", "RuntimeError: boom", SETTINGS)
    assert breaker.tripped(s) == {} and available(s).usable(s, "xtts")
    breaker.succeeded(s, "xtts")  # a success in between resets the count
    for _ in range(2):
        breaker.failed(s, "xtts", "RuntimeError: boom", SETTINGS)
    assert breaker.tripped(s) == {}
    breaker.failed(s, "xtts", "RuntimeError: boom", SETTINGS)
    tripped = breaker.tripped(s)["xtts"]
    assert tripped.failures == 3 and tripped.reason == "RuntimeError: boom" and tripped.until > utcnow()
    assert not available(s).usable(s, "xtts") and available(s).usable(s, "piper")
    breaker.succeeded(s, "xtts")
    assert breaker.tripped(s) == {} and available(s).usable(s, "xtts")


def test_after_the_cool_down_exactly_one_job_probes(s: Session) -> None:
    for _ in range(3):
        breaker.failed(s, "xtts", "RuntimeError: boom", SETTINGS)
    cool_down_ends(s, "xtts")
    seen = available(s)  # what an API replica read before anyone claimed the probe
    assert seen.usable(s, "xtts")  # this job claims the probe, which starts a new cool-down
    assert not seen.usable(s, "xtts") and not available(s).usable(s, "xtts")
    breaker.failed(s, "xtts", "RuntimeError: still broken", SETTINGS)  # the probe fails: open again
    assert breaker.tripped(s)["xtts"].reason == "RuntimeError: still broken"
    cool_down_ends(s, "xtts")
    assert available(s).usable(s, "xtts")
    breaker.succeeded(s, "xtts")  # the probe succeeds: closed
    assert breaker.tripped(s) == {}


def test_an_engine_without_a_live_worker_is_never_usable(s: Session) -> None:
    assert not available(s).usable(s, "styletts2")
