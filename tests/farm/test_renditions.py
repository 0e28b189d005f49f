"""Rendition rows against the real PostgreSQL: requests that make the same audio at once."""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text

from voicefarm.library import renditions
from voicefarm.library.cache import CachedAudio
from voicefarm.store import db
from voicefarm.store.models import Rendition


def blocked_on_a_lock() -> bool:
    """Whether a session of this database waits on another's row lock (PostgreSQL's own view)."""
    with db.session() as s:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        return bool(s.scalar(text(query)))


def test_two_requests_recording_one_rendition_at_once_both_land() -> None:
    key = f"race-{secrets.token_hex(8)}"

    def made(url: str) -> CachedAudio:
        return CachedAudio(key, f"audio/{key}.mp3", url, "piper", "mp3", 1.0, 22050)

    def second() -> None:
        with db.session() as s:
            renditions.record(s, made("second"), "source", "voice")

    with ThreadPoolExecutor(1) as pool:
        with db.session() as first:
            renditions.record(first, made("first"), "source", "voice")
            waiting = pool.submit(second)
            deadline = time.monotonic() + 30
            while not blocked_on_a_lock():  # it waits on the first one's row, which neither saw before
                assert not waiting.done(), waiting.result()
                assert time.monotonic() < deadline, "the second insert never waited on the first"
                time.sleep(0.02)
            assert not waiting.done()
        waiting.result(timeout=30)  # once the first commits, it lands: no duplicate-key error
    with db.session() as s:
        assert s.get(Rendition, key).url == "second"
        s.delete(s.get(Rendition, key))
