"""Where finished audio lives: Redis (fast, with a TTL) in front of the renditions table (durable)."""

from __future__ import annotations

import json
from functools import lru_cache
from dataclasses import asdict, dataclass

from redis import Redis
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
    def __init__(self, redis: Redis | None, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl = ttl_seconds

    @staticmethod
    def _rkey(content_key: str) -> str:
        return f"voicefarm:audio:{content_key}"

    def lookup(self, session: Session, keys: list[str]) -> CachedAudio | None:
        """The first of `keys` (in order of preference) whose audio exists."""
        found: dict[str, CachedAudio] = {}
        if self.redis is not None:
            for key, raw in zip(keys, self.redis.mget([self._rkey(k) for k in keys])):
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
    redis = Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2) if settings.redis_url else None
    return AudioCache(redis, settings.cache_ttl_seconds)
