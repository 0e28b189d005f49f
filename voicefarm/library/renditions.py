"""Renditions: one speech (a source key) stored as a lossless master plus each format and rate
asked for. Other formats are converted from the master, never synthesized again."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from voicefarm.audio.codec import MASTER, content_type, decode, encode
from voicefarm.library.cache import AudioCache, CachedAudio
from voicefarm.store.db import upsert
from voicefarm.store.models import Alignment, Job, Rendition, utcnow
from voicefarm.store.objects import Store


def master_key(source: str) -> str:
    return f"audio/master/{source}.{MASTER}"


def content_key_of(object_key: str) -> str:
    """The content key in an audio object's key, `audio/<content key>.<format>`."""
    return object_key.removeprefix("audio/").rsplit(".", 1)[0]


def record(session: Session, audio: CachedAudio, source: str, voice: str) -> None:
    """Keep a stored audio's row. One INSERT ... ON CONFLICT: two requests that convert the same
    master at once (or a worker that makes a key again) both land, the last one's row wins."""
    row = {
        "content_key": audio.content_key,
        "source_key": source,
        "object_key": audio.object_key,
        "url": audio.url,
        "engine": audio.engine,
        "voice": voice,
        "format": audio.format,
        "duration": audio.duration,
        "sample_rate": audio.sample_rate,
        "last_used_at": utcnow(),  # made again: a use, even of a key that existed
    }
    insert = upsert(session, Rendition).values(row)
    session.execute(
        insert.on_conflict_do_update(
            index_elements=[Rendition.content_key], set_={k: insert.excluded[k] for k in row if k != "content_key"}
        )
    )


def convert(
    session: Session, store: Store, cache: AudioCache, master: Rendition, key: str, fmt: str, rate: int | None
) -> CachedAudio:
    """Make the rendition `key` (format `fmt` at `rate`) from the master of `master`'s speech."""
    audio = decode(store.get(master_key(master.source_key)))
    data, actual = encode(audio, fmt, rate)
    object_key = f"audio/{key}.{fmt}"
    store.put(object_key, data, content_type(fmt))
    made = CachedAudio(key, object_key, store.url(object_key), master.engine, fmt, audio.duration, actual)
    record(session, made, master.source_key, master.voice)
    session.commit()
    cache.put(made)
    return made


def purge(session: Session, store: Store, cache: AudioCache, voice: str | None = None) -> int:
    """Delete renditions (all, or one voice's) with their masters and word timestamps: objects,
    cache keys and rows. Jobs that pointed at them keep their record but no longer offer audio.
    Returns how many."""
    query = select(Rendition) if voice is None else select(Rendition).where(Rendition.voice == voice)
    rows = session.scalars(query).all()
    for row in rows:
        store.delete(row.object_key)
    sources = {row.source_key for row in rows if row.source_key}
    for source in sources:
        store.delete(master_key(source))
    session.execute(delete(Alignment).where(Alignment.source_key.in_(sources)))
    cache.forget([row.content_key for row in rows])
    keys = [row.object_key for row in rows]
    for start in range(0, len(keys), 500):
        session.execute(update(Job).where(Job.object_key.in_(keys[start : start + 500])).values(object_key=None))
    for row in rows:
        session.delete(row)
    session.commit()
    return len(rows)
