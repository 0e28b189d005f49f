"""A job's live audio: what its worker appends while it synthesizes, for the API to relay.

With Redis (`redis_url` set): a Redis stream per job, `<prefix>:stream:<job id>`, trimmed to
`stream_max_entries` and expiring `stream_ttl_seconds` after an attempt ends (or after the
longest task, if its worker dies). The API blocks on XREAD, so a piece reaches it at once.

Without Redis (the embedded farm): an append-only file per job under `<data_dir>/streams`, one
JSON line an entry, that the API polls every `filesystem_polling_interval`. The embedded
farm's API and workers share one machine's disk, and its broker (kombu's filesystem
transport) offers nothing a reader could wait on. Files older than `stream_ttl_seconds` are
swept when a new one is made.

Entries name their attempt and engine, so a reader can tell attempts apart: a piece of audio
(float32 samples and their rate), or the end of an attempt: `end` once its audio is stored,
`failed` with its error. A document's pieces are its segments, appended as each is ready, in no
particular order: each names its position and its stored master rather than carrying samples
(a book's audio does not belong in Redis), and, in place of an attempt, its engine's place in
the job's chain, since one engine speaks all of it, over as many attempts and dispatches as it
takes (voicefarm.worker.documents).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.typing import EncodableT, FieldT

from voicefarm.engines.base import Audio
from voicefarm.settings import Settings, get_settings
from voicefarm.store.redis import aconnect, connect

Kind = Literal["audio", "end", "failed"]


@dataclass(frozen=True)
class Entry:
    attempt: int
    engine: str
    kind: Kind
    audio: Audio | None = None  # kind "audio"
    error: str | None = None  # kind "failed"
    segment: int | None = None  # a document's piece: the segment it is,
    source: str | None = None  # the source key of its stored master,
    pause: float = 0.0  # and the seconds of silence after it

    def fields(self) -> dict[FieldT, EncodableT]:
        out: dict[FieldT, EncodableT] = {"attempt": self.attempt, "engine": self.engine, "kind": self.kind}
        if self.audio is not None:
            out |= {"rate": self.audio.sample_rate, "pcm": self.audio.samples.astype("<f4").tobytes()}
        if self.error is not None:
            out["error"] = self.error
        if self.segment is not None and self.source is not None:
            out |= {"segment": self.segment, "source": self.source, "pause": self.pause}
        return out

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> Entry:
        pcm = fields.get("pcm")
        audio = Audio(np.frombuffer(pcm, dtype="<f4"), int(fields["rate"])) if pcm is not None else None
        segment = int(fields["segment"]) if "segment" in fields else None
        return cls(
            int(fields["attempt"]),
            str(fields["engine"]),
            fields["kind"],
            audio,
            fields.get("error"),
            segment,
            fields.get("source"),
            float(fields.get("pause", 0.0)),
        )


class Feed(ABC):
    """Workers append (blocking I/O); the API reads (asyncio). A cursor is where a reader is."""

    start = "0"  # the cursor before a job's first entry

    @abstractmethod
    def append(self, job_id: str, entry: Entry) -> None: ...

    @abstractmethod
    async def read(self, job_id: str, cursor: str, wait: float) -> tuple[list[Entry], str]:
        """The entries after `cursor`, waiting up to `wait` seconds for one; and the next cursor."""


class RedisFeed(Feed):
    def __init__(self, settings: Settings) -> None:
        self.prefix = settings.redis_prefix
        self.max_entries = settings.stream_max_entries
        self.ttl = int(settings.stream_ttl_seconds)
        # An attempt's stream outlives it: a worker that dies leaves no end for the expiry.
        self.open_ttl = settings.longest_task + self.ttl
        self.url = settings.redis_url

    def key(self, job_id: str) -> str:
        return f"{self.prefix}:stream:{job_id}"

    def append(self, job_id: str, entry: Entry) -> None:
        pipe = _redis(self.url).pipeline(transaction=False)
        pipe.xadd(self.key(job_id), entry.fields(), maxlen=self.max_entries, approximate=True)
        pipe.expire(self.key(job_id), self.ttl if entry.kind != "audio" else self.open_ttl)
        pipe.execute()

    async def read(self, job_id: str, cursor: str, wait: float) -> tuple[list[Entry], str]:
        found = cast(
            list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]],
            await _aredis(self.url).xread({self.key(job_id): cursor}, block=max(1, int(wait * 1000))),
        )
        entries = []
        for _, rows in found:
            for entry_id, fields in rows:
                entries.append(Entry.from_fields({k.decode(): _text(k, v) for k, v in fields.items()}))
                cursor = entry_id.decode()
        return entries, cursor


def _text(key: bytes, value: bytes) -> bytes | str:
    return value if key == b"pcm" else value.decode()


class FileFeed(Feed):
    def __init__(self, settings: Settings) -> None:
        self.root = settings.data_dir / "streams"
        self.ttl = settings.stream_ttl_seconds
        self.poll = settings.filesystem_polling_interval

    def path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.jsonl"

    def append(self, job_id: str, entry: Entry) -> None:
        path = self.path(job_id)
        if not path.exists():
            self._sweep()
        fields = entry.fields()
        if "pcm" in fields:
            fields["pcm"] = base64.b64encode(cast(bytes, fields["pcm"])).decode()
        # One write of one whole line: a reader never takes half an entry for a whole one.
        with path.open("a") as f:
            f.write(json.dumps(fields) + "\n")

    def _sweep(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        old = time.time() - self.ttl
        for path in self.root.glob("*.jsonl"):
            try:
                if path.stat().st_mtime < old:
                    path.unlink()
            except FileNotFoundError:  # swept by another worker meanwhile
                pass

    def _read(self, job_id: str, offset: int) -> tuple[list[Entry], int]:
        try:
            with self.path(job_id).open("rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:  # no entry yet: the job waits for a worker
            return [], offset
        whole = data[: data.rfind(b"\n") + 1]  # a line still being written waits for the next read
        entries = []
        for line in whole.splitlines():
            fields = json.loads(line)
            if "pcm" in fields:
                fields["pcm"] = base64.b64decode(fields["pcm"])
            entries.append(Entry.from_fields(fields))
        return entries, offset + len(whole)

    async def read(self, job_id: str, cursor: str, wait: float) -> tuple[list[Entry], str]:
        deadline = time.monotonic() + wait
        offset = int(cursor)
        while True:
            entries, offset = await asyncio.to_thread(self._read, job_id, offset)
            if entries or time.monotonic() >= deadline:
                return entries, str(offset)
            await asyncio.sleep(self.poll)


@lru_cache
def _redis(url: str) -> Redis:
    return connect(url, socket_timeout=5)


@lru_cache
def _aredis(url: str) -> AsyncRedis:
    # Its reads block up to a few seconds by design: a socket timeout above the longest wait.
    return aconnect(url, socket_timeout=10)


@lru_cache
def get_feed() -> Feed:
    settings = get_settings()
    return RedisFeed(settings) if settings.redis_url else FileFeed(settings)
