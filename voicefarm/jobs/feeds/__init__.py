"""A job's live audio: what its worker appends while it synthesizes, for the API to relay.

One interface (`base`: the feed and its entries), one class per kind: a Redis stream per job
where the farm has Redis (`redis`, `redis_url` set), else a file per job (`file`: the embedded
farm).
"""

from __future__ import annotations

from functools import lru_cache

from voicefarm.jobs.feeds.base import Entry, Feed, Kind
from voicefarm.jobs.feeds.file import FileFeed
from voicefarm.jobs.feeds.redis import RedisFeed
from voicefarm.settings import get_settings

__all__ = ["Entry", "Feed", "FileFeed", "Kind", "RedisFeed", "get_feed"]


@lru_cache
def get_feed() -> Feed:
    settings = get_settings()
    return RedisFeed(settings) if settings.redis_url else FileFeed(settings)
