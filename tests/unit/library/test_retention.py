"""Retention's pure parts: which jobs expire (on an in-memory SQLite database), whose record an
object in the store needs, and the settings' guard."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from voicefarm.library.retention.policy import Owner, job_expires, owner
from voicefarm.settings import Settings
from voicefarm.store.models import Base, Batch, Job, Tenant, utcnow

KEY = "ab" * 32


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (f"audio/{KEY}.wav", Owner("rendition", KEY)),
        (f"audio/{KEY}.opus", Owner("rendition", KEY)),
        (f"audio/master/{KEY}.flac", Owner("speech", KEY)),
        ("voices/0123abcd/v3/sample.flac", Owner("voice", "0123abcd", 3)),
        ("voices/0123abcd/v1/latents/xtts-4f2a.bin", Owner("voice", "0123abcd", 1)),
        # Nothing this farm records: collected once past the grace period.
        ("audio/.tmp-k2j4h1x9", None),  # the local store's write, interrupted before its rename
        (f"audio/master/{KEY}.wav", None),  # masters are FLAC
        (f"audio/{KEY}", None),
        ("voices/0123abcd/sample.flac", None),
        ("voices/0123abcd/vX/sample.flac", None),
    ],
)
def test_an_objects_key_names_the_record_it_needs(key: str, expected: Owner | None) -> None:
    assert owner(key) == expected


@pytest.mark.parametrize(
    ("env", "longest"),
    [({"gc_orphan_grace_seconds": 150}, 150), ({"engine_time_limits": {"xtts": (600, 900)}}, 900)],
)
def test_the_grace_period_for_unrecorded_objects_must_outlast_every_task(env: dict, longest: int) -> None:
    with pytest.raises(ValidationError, match=rf"must exceed the longest hard time limit \({longest} s\)"):
        Settings(**{"gc_orphan_grace_seconds": 600, **env})
    assert Settings().gc_orphan_grace_seconds == 24 * 3600


def test_every_job_either_expires_or_is_kept_never_neither() -> None:
    """Retention keeps audio that a kept job points at, with NOT job_expires: for a row where
    job_expires were NULL (a job in no batch, say), NOT NULL is NULL, and that job would keep
    nothing."""
    now = utcnow()
    old, recent = now - timedelta(days=31), now - timedelta(days=1)
    jobs = {  # id -> (status, finished_at, batch)
        "alone-old": ("succeeded", old, None),
        "alone-recent": ("succeeded", recent, None),
        "alone-failed-old": ("failed", old, None),
        "queued-long-ago": ("queued", None, None),
        "in-old-batch": ("succeeded", old, "done-old"),
        "old-in-recent-batch": ("succeeded", old, "done-recent"),
        "old-in-open-batch": ("succeeded", old, "open"),
        "waiting-in-open-batch": ("queued", None, "open"),
    }
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add(Tenant(id="t", name="t"))
        for batch_id, status, finished in [
            ("done-old", "done", old),
            ("done-recent", "done", recent),
            ("open", "running", None),
        ]:
            s.add(Batch(id=batch_id, tenant_id="t", status=status, total=1, finished_at=finished))
        for job_id, (status, finished, batch_id) in jobs.items():
            fields = dict(text="x", voice="v", voice_version="1", language="en", quality="fast", format="wav")
            s.add(
                Job(
                    id=job_id,
                    tenant_id="t",
                    status=status,
                    finished_at=finished,
                    batch_id=batch_id,
                    chain=[],
                    engine="piper",
                    content_key=job_id,
                    **fields,
                )
            )
        s.commit()
        cutoff = now - timedelta(days=30)
        expires = set(s.scalars(select(Job.id).where(job_expires(Job, cutoff))))
        kept = set(s.scalars(select(Job.id).where(~job_expires(Job, cutoff))))
    assert expires == {"alone-old", "alone-failed-old", "in-old-batch"}
    assert kept == set(jobs) - expires
