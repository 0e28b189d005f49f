"""Where finished audio lives: Redis (fast, with a TTL) in front of the renditions table (durable)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry
from sqlalchemy import select
from sqlalchemy.orm import Session

from voicefarm.models import Rendition
from voicefarm.settings import get_settings


@dataclass(frozen=True)
class CachedAudio:
    content_key: str
    object_key: str
    url: str  # the object store's own URL for the object
    engine: str
    format: str
    duration: float
    sample_rate: int


class AudioCache:
    def __init__(
        self, redis: Redis | None, ttl_seconds: int, aredis: AsyncRedis | None = None, prefix: str = "voicefarm"
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.aredis = aredis  # the API's event loop asks Redis without a thread hop
        self.ttl = ttl_seconds

    def _rkey(self, content_key: str) -> str:
        return f"{self.prefix}:audio:{content_key}"

    async def peek(self, key: str) -> CachedAudio | None:
        """Redis alone, for the API's hot path; None means "ask lookup()"."""
        if self.aredis is None:
            return None
        raw = await self.aredis.get(self._rkey(key))
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
        return next((found[k] for k in keys if k in found), None)

    def put(self, audio: CachedAudio) -> None:
        if self.redis is not None:
            self.redis.set(self._rkey(audio.content_key), json.dumps(asdict(audio)), ex=self.ttl)

    def forget(self, keys: list[str]) -> None:
        if self.redis is not None and keys:
            self.redis.delete(*(self._rkey(k) for k in keys))


def from_rendition(row: Rendition) -> CachedAudio:
    return CachedAudio(row.content_key, row.object_key, row.url, row.engine, row.format, row.duration, row.sample_rate)


@lru_cache
def get_cache() -> AudioCache:
    settings = get_settings()
    if not settings.redis_url:
        return AudioCache(None, settings.cache_ttl_seconds, prefix=settings.redis_prefix)
    # A restarted Redis leaves dead sockets in the pool: reconnect and retry rather than fail.
    options: dict[str, Any] = {
        "socket_timeout": 2,
        "socket_connect_timeout": 2,
        "retry_on_error": [ConnectionError, TimeoutError],
    }
    return AudioCache(
        Redis.from_url(settings.redis_url, retry=Retry(ExponentialBackoff(cap=0.5), 3), **options),
        settings.cache_ttl_seconds,
        AsyncRedis.from_url(settings.redis_url, retry=AsyncRetry(ExponentialBackoff(cap=0.5), 3), **options),
        settings.redis_prefix,
    )
