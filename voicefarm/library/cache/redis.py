"""The URL cache where the farm has Redis: each entry in Redis, expiring after
`cache_ttl_seconds`, in front of the renditions table.

Each use is noted in a Redis sorted set (content key -> when), so the cache-hit path never
writes to the database; the collector folds those into `renditions.last_used_at`
(voicefarm/library/retention/collector.py).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime

from redis.exceptions import ResponseError
from sqlalchemy.orm import Session

from voicefarm.library.cache.base import AudioCache, CachedAudio
from voicefarm.settings import Settings
from voicefarm.store.redis import aconnect, connect

# A hit and the note of its use in one round trip: the hot path gains no database write.
PEEK = """
local raw = redis.call('GET', KEYS[1])
if raw then redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1]) end
return raw
"""


class RedisCache(AudioCache):
    def __init__(self, settings: Settings) -> None:
        self.redis = connect(settings.redis_url)
        self.prefix = settings.redis_prefix
        self.ttl = settings.cache_ttl_seconds
        # The API's event loop asks Redis without a thread hop.
        self._peek = aconnect(settings.redis_url).register_script(PEEK)
        self.uses_key = f"{self.prefix}:audio-uses"  # content key -> unix time of its last use
        self.folding_key = f"{self.prefix}:audio-uses-folding"  # what the collector is folding in

    def _rkey(self, content_key: str) -> str:
        return f"{self.prefix}:audio:{content_key}"

    async def peek(self, key: str) -> CachedAudio | None:
        raw = await self._peek(keys=[self._rkey(key), self.uses_key], args=[key, int(time.time())])
        return CachedAudio(**json.loads(raw)) if raw is not None else None

    def held(self, keys: list[str]) -> dict[str, CachedAudio]:
        found = zip(keys, self.redis.mget([self._rkey(k) for k in keys]), strict=True)
        return {key: CachedAudio(**json.loads(raw)) for key, raw in found if raw is not None}

    def put(self, audio: CachedAudio) -> None:
        self.redis.set(self._rkey(audio.content_key), json.dumps(asdict(audio)), ex=self.ttl)

    def forget(self, keys: list[str]) -> None:
        if keys:
            self.redis.delete(*(self._rkey(k) for k in keys))

    def used(self, session: Session, keys: list[str]) -> None:
        if keys:
            self.redis.zadd(self.uses_key, dict.fromkeys(keys, int(time.time())))

    def take_uses(self) -> Iterator[tuple[str, datetime]]:
        with contextlib.suppress(ResponseError):  # "no such key": no use noted since the last fold
            self.redis.renamenx(self.uses_key, self.folding_key)
        for key, when in self.redis.zscan_iter(self.folding_key):
            yield key.decode(), datetime.fromtimestamp(when, UTC)

    def folded(self) -> None:
        self.redis.delete(self.folding_key)

    def last_uses(self, keys: list[str]) -> dict[str, datetime]:
        if not keys:
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

    def size(self) -> int | None:
        return sum(1 for _ in self.redis.scan_iter(f"{self.prefix}:audio:*"))

    def check(self) -> str:
        self.redis.ping()
        return "redis"
