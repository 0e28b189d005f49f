"""Where finished audio lives: Redis (fast, with a TTL) in front of the renditions table (durable).

Each use of audio is noted, for retention: in a Redis sorted set (content key -> when) when the
farm has Redis, so the cache-hit path never writes to the database; the collector folds those
into `renditions.last_used_at` (voicefarm/library/retention/collector.py). Without Redis, on the
record itself.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import lru_cache

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import ResponseError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from voicefarm.settings import get_settings
from voicefarm.store.models import Rendition, utcnow
from voicefarm.store.redis import aconnect, connect


@dataclass(frozen=True)
class CachedAudio:
    content_key: str
    object_key: str
    url: str  # the object store's own URL for the object
    engine: str
    format: str
    duration: float
    sample_rate: int


# A hit and the note of its use in one round trip: the hot path gains no database write.
PEEK = """
local raw = redis.call('GET', KEYS[1])
if raw then redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1]) end
return raw
"""


class AudioCache:
    def __init__(
        self, redis: Redis | None, ttl_seconds: int, aredis: AsyncRedis | None = None, prefix: str = "voicefarm"
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl = ttl_seconds
        # The API's event loop asks Redis without a thread hop (the cache, admission's windows).
        self.aredis = aredis
        self._peek = aredis.register_script(PEEK) if aredis is not None else None
        self.uses_key = f"{prefix}:audio-uses"  # content key -> unix time of its last use
        self.folding_key = f"{prefix}:audio-uses-folding"  # what the collector is folding in

    def _rkey(self, content_key: str) -> str:
        return f"{self.prefix}:audio:{content_key}"

    async def peek(self, key: str) -> CachedAudio | None:
        """Redis alone, for the API's hot path; None means "ask lookup()". A hit is a use."""
        if self._peek is None:
            return None
        raw = await self._peek(keys=[self._rkey(key), self.uses_key], args=[key, int(time.time())])
        return CachedAudio(**json.loads(raw)) if raw is not None else None

    def lookup(self, session: Session, keys: list[str]) -> CachedAudio | None:
        """The first of `keys` (in order of preference) whose audio exists."""
        found: dict[str, CachedAudio] = {}
        if self.redis is not None:
            for key, raw in zip(keys, self.redis.mget([self._rkey(k) for k in keys]), strict=True):
                if raw is not None:
                    found[key] = CachedAudio(**json.loads(raw))
        # Only keys preferred over Redis's best hit are worth a database look.
        best = next((i for i, k in enumerate(keys) if k in found), len(keys))
        if best:
            rows = session.scalars(select(Rendition).where(Rendition.content_key.in_(keys[:best]))).all()
            for row in rows:
                found[row.content_key] = cached = from_rendition(row)
                self.put(cached)  # Redis expired or was flushed: refill it from the durable record
        hit = next((found[k] for k in keys if k in found), None)
        if hit is not None:
            self.used(session, [hit.content_key])
        return hit

    def put(self, audio: CachedAudio) -> None:
        if self.redis is not None:
            self.redis.set(self._rkey(audio.content_key), json.dumps(asdict(audio)), ex=self.ttl)

    def forget(self, keys: list[str]) -> None:
        if self.redis is not None and keys:
            self.redis.delete(*(self._rkey(k) for k in keys))

    def used(self, session: Session, keys: list[str]) -> None:
        """Note that this audio has just been used (it answered a request, or was downloaded)."""
        if not keys:
            return
        if self.redis is not None:
            self.redis.zadd(self.uses_key, dict.fromkeys(keys, int(time.time())))
            return
        session.execute(update(Rendition).where(Rendition.content_key.in_(keys)).values(last_used_at=utcnow()))
        session.commit()

    def take_uses(self) -> Iterator[tuple[str, datetime]]:
        """The uses noted since the last fold, set aside (a fold that died is taken up again);
        call folded() once they are recorded."""
        if self.redis is None:
            return
        with contextlib.suppress(ResponseError):  # "no such key": no use noted since the last fold
            self.redis.renamenx(self.uses_key, self.folding_key)
        for key, when in self.redis.zscan_iter(self.folding_key):
            yield key.decode(), datetime.fromtimestamp(when, UTC)

    def folded(self) -> None:
        if self.redis is not None:
            self.redis.delete(self.folding_key)

    def last_uses(self, keys: list[str]) -> dict[str, datetime]:
        """The latest use noted in Redis and not yet folded into the record, of each key that has one."""
        if self.redis is None or not keys:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        pipe.zmscore(self.uses_key, keys)
        pipe.zmscore(self.folding_key, keys)
        found: dict[str, datetime] = {}
        for scores in pipe.execute():
            for key, when in zip(keys, scores, strict=True):
                if when is not None:
                    at = datetime.fromtimestamp(when, UTC)
                    found[key] = max(at, found.get(key, at))
        return found


def from_rendition(row: Rendition) -> CachedAudio:
    return CachedAudio(row.content_key, row.object_key, row.url, row.engine, row.format, row.duration, row.sample_rate)


@lru_cache
def get_cache() -> AudioCache:
    settings = get_settings()
    if not settings.redis_url:
        return AudioCache(None, settings.cache_ttl_seconds, prefix=settings.redis_prefix)
    url = settings.redis_url
    return AudioCache(connect(url), settings.cache_ttl_seconds, aconnect(url), settings.redis_prefix)
