"""The URL cache: where finished audio lives, by content key, behind one interface (`base`) with
one class per kind. Where the farm has Redis (`redis`), fast entries with a TTL sit in front of
the renditions table (durable); without it (`local`: the embedded farm), the table alone answers.
"""

from __future__ import annotations

from functools import lru_cache

from voicefarm.library.cache.base import AudioCache, CachedAudio, from_rendition
from voicefarm.library.cache.local import LocalCache
from voicefarm.library.cache.redis import RedisCache
from voicefarm.settings import get_settings

__all__ = ["AudioCache", "CachedAudio", "LocalCache", "RedisCache", "from_rendition", "get_cache"]


@lru_cache
def get_cache() -> AudioCache:
    settings = get_settings()
    return RedisCache(settings) if settings.redis_url else LocalCache()
