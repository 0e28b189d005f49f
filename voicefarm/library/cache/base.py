"""The interface every URL cache kind gives the farm, and the audio it answers with.

The renditions table is the durable record behind every kind: a lookup asks it for what the
cache does not hold in front of it, and refills the cache from it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from voicefarm.store.models import Rendition


@dataclass(frozen=True)
class CachedAudio:
    content_key: str
    object_key: str
    url: str  # the object store's own URL for the object
    engine: str
    format: str
    duration: float
    sample_rate: int


def from_rendition(row: Rendition) -> CachedAudio:
    return CachedAudio(row.content_key, row.object_key, row.url, row.engine, row.format, row.duration, row.sample_rate)


class AudioCache(ABC):
    @abstractmethod
    async def peek(self, key: str) -> CachedAudio | None:
        """What the cache holds in front of the record alone, for the API's hot path; None means
        "ask lookup()". A hit is a use."""

    @abstractmethod
    def held(self, keys: list[str]) -> dict[str, CachedAudio]:
        """The audio of `keys` that the cache holds in front of the record, by key."""

    def lookup(self, session: Session, keys: list[str]) -> CachedAudio | None:
        """The first of `keys` (in order of preference) whose audio exists."""
        found = self.held(keys)
        # Only keys preferred over the cache's best hit are worth a database look.
        best = next((i for i, k in enumerate(keys) if k in found), len(keys))
        if best:
            rows = session.scalars(select(Rendition).where(Rendition.content_key.in_(keys[:best]))).all()
            for row in rows:
                found[row.content_key] = cached = from_rendition(row)
                self.put(cached)  # the cache's entry expired or was flushed: refill it from the durable record
        hit = next((found[k] for k in keys if k in found), None)
        if hit is not None:
            self.used(session, [hit.content_key])
        return hit

    @abstractmethod
    def put(self, audio: CachedAudio) -> None: ...

    @abstractmethod
    def forget(self, keys: list[str]) -> None: ...

    @abstractmethod
    def used(self, session: Session, keys: list[str]) -> None:
        """Note that this audio has just been used (it answered a request, or was downloaded)."""

    @abstractmethod
    def take_uses(self) -> Iterator[tuple[str, datetime]]:
        """The uses noted since the last fold, set aside (a fold that died is taken up again);
        call folded() once they are recorded."""

    @abstractmethod
    def folded(self) -> None: ...

    @abstractmethod
    def last_uses(self, keys: list[str]) -> dict[str, datetime]:
        """The latest use noted and not yet folded into the record, of each key that has one."""

    @abstractmethod
    def size(self) -> int | None:
        """How many entries the cache holds in front of the record; None where it holds none there."""

    @abstractmethod
    def check(self) -> str:
        """What answers lookups; raises if it cannot be reached."""
