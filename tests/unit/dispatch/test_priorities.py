"""Fair priorities from a tenant's backlog, counted in a real (SQLite) database."""

from __future__ import annotations

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from voicefarm.dispatch.priorities import BATCH, INTERACTIVE, LEVELS, level, priorities
from voicefarm.store.models import Base, Job, JobStatus


def session_with(backlog: dict[str, int]) -> Session:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    s = Session(engine)
    for tenant, n in backlog.items():
        for i in range(n):
            s.add(
                Job(
                    tenant_id=tenant,
                    text=f"{tenant} {i}",
                    voice="v",
                    voice_version="1",
                    language="en",
                    quality="fast",
                    format="wav",
                    chain=[],
                    engine="piper",
                    content_key=f"{tenant}-{i}",
                    status=JobStatus.queued.value,
                )
            )
    s.commit()
    return s


def test_levels_grow_with_the_backlog_and_stop() -> None:
    assert [level(n) for n in (0, 1, 7, 8, 2000)] == [0, 1, 1, 2, 2]
    assert BATCH == 3
    assert list(range(6)) == LEVELS


def test_a_light_tenant_goes_ahead_of_a_flood() -> None:
    s = session_with({"flood": 2000, "light": 1})
    # Each tenant's newest queued job is the one being sent.
    assert priorities(s, "light", 1, batch=False) == [INTERACTIVE]
    assert priorities(s, "flood", 1, batch=False) == [INTERACTIVE + 2]


def test_a_batch_spreads_over_the_batch_levels_behind_interactive_jobs() -> None:
    s = session_with({"t": 10})  # a batch of 10 just recorded, nothing else waiting
    assert priorities(s, "t", 10, batch=True) == [BATCH, *[BATCH + 1] * 7, BATCH + 2, BATCH + 2]
    assert min(priorities(s, "t", 10, batch=True)) > max(LEVELS[:BATCH])


def test_followers_are_not_backlog() -> None:
    s = session_with({"t": 3})
    for job in s.query(Job).all()[1:]:
        job.leader_id = "someone"  # followers are never sent: they wait on a leader's synthesis
    s.commit()
    assert priorities(s, "t", 1, batch=False) == [INTERACTIVE]
