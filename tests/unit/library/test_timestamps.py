"""A job's word timestamps (voicefarm.library.timestamps) on an embedded farm's SQLite database."""

from __future__ import annotations

import pytest

from tests.unit.embedded import TENANT, audio, live, plan
from voicefarm.errors import NotReady
from voicefarm.fleet import heartbeat
from voicefarm.jobs import recording
from voicefarm.jobs.lifecycle import begin, finish
from voicefarm.library import renditions, timestamps
from voicefarm.library.cache import get_cache
from voicefarm.settings import get_settings
from voicefarm.store import db
from voicefarm.store.models import Job
from voicefarm.store.objects import get_store

pytestmark = pytest.mark.usefixtures("farm")


def test_a_job_whose_audio_was_deleted_before_it_was_aligned_says_so_instead_of_try_again() -> None:
    live("xtts", "piper")
    asked = plan("Tell me when each word is said.", timestamps=True)
    with db.session() as s:
        queued, _ = recording.record(
            s, get_cache(), get_store(), TENANT, asked, live=heartbeat.available(s, get_settings())
        )
    assert isinstance(queued, Job)
    run = begin(queued.id, "xtts", "w/1", 0)
    assert run is not None and finish(queued.id, run.attempt_id, audio=audio(run, "xtts"), seconds=0.5)
    with db.session() as s:
        with pytest.raises(NotReady, match="being aligned, try again shortly"):
            timestamps.of_job(s, s.get_one(Job, queued.id))
        assert renditions.purge(s, get_store(), get_cache()) == 1  # DELETE /v1/cache
    with db.session() as s, pytest.raises(NotReady, match="its audio and timestamps have since been deleted"):
        timestamps.of_job(s, s.get_one(Job, queued.id))
