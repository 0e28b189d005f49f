"""Rendition rows against the real PostgreSQL: requests that make the same audio at once."""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor

from voicefarm.library import renditions
from voicefarm.library.cache import CachedAudio
from voicefarm.store import db
from voicefarm.store.models import Rendition


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
            time.sleep(0.5)
            assert not waiting.done()  # it waits on the first one's row, which neither saw before
        waiting.result(timeout=30)  # once the first commits, it lands: no duplicate-key error
    with db.session() as s:
        assert s.get(Rendition, key).url == "second"
        s.delete(s.get(Rendition, key))
