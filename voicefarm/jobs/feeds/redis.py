"""The feed where the farm has Redis: a stream per job, `<prefix>:stream:<job id>`, trimmed to
`stream_max_entries` and expiring `stream_ttl_seconds` after an attempt ends (or after the
longest task, if its worker dies). The API blocks on XREAD, so a piece reaches it at once.
"""

from __future__ import annotations

from typing import cast

from voicefarm.jobs.feeds.base import Entry, Feed
from voicefarm.settings import Settings
from voicefarm.store.redis import aconnect, connect


class RedisFeed(Feed):
    def __init__(self, settings: Settings) -> None:
        self.prefix = settings.redis_prefix
        self.max_entries = settings.stream_max_entries
        self.ttl = int(settings.stream_ttl_seconds)
        # An attempt's stream outlives it: a worker that dies leaves no end for the expiry.
        self.open_ttl = settings.longest_task + self.ttl
        self.redis = connect(settings.redis_url, socket_timeout=5)
        # XREAD blocks up to a few seconds by design: a socket timeout above the longest wait.
        self.aredis = aconnect(settings.redis_url, socket_timeout=10)

    def key(self, job_id: str) -> str:
        return f"{self.prefix}:stream:{job_id}"

    def append(self, job_id: str, entry: Entry) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(self.key(job_id), entry.fields(), maxlen=self.max_entries, approximate=True)
        pipe.expire(self.key(job_id), self.ttl if entry.kind != "audio" else self.open_ttl)
        pipe.execute()

    async def read(self, job_id: str, cursor: str, wait: float) -> tuple[list[Entry], str]:
        found = cast(
            list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]],
            await self.aredis.xread({self.key(job_id): cursor}, block=max(1, int(wait * 1000))),
        )
        entries = []
        for _, rows in found:
            for entry_id, fields in rows:
                entries.append(Entry.from_fields({k.decode(): _text(k, v) for k, v in fields.items()}))
                cursor = entry_id.decode()
        return entries, cursor


def _text(key: bytes, value: bytes) -> bytes | str:
    return value if key == b"pcm" else value.decode()
