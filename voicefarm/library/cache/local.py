"""The URL cache where the farm has no Redis (the embedded farm): the renditions table alone
answers, and each use is written on the record itself."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from voicefarm.library.cache.base import AudioCache, CachedAudio
from voicefarm.store.models import Rendition, utcnow


class LocalCache(AudioCache):
    """Nothing is held in front of the record: every lookup asks the database, and there is
    nothing to fill, forget or fold."""

    async def peek(self, key: str) -> CachedAudio | None:
        return None

    def held(self, keys: list[str]) -> dict[str, CachedAudio]:
        return {}

    def put(self, audio: CachedAudio) -> None:
        pass

    def forget(self, keys: list[str]) -> None:
        pass

    def used(self, session: Session, keys: list[str]) -> None:
        if keys:
            session.execute(update(Rendition).where(Rendition.content_key.in_(keys)).values(last_used_at=utcnow()))
            session.commit()

    def take_uses(self) -> Iterator[tuple[str, datetime]]:
        return iter(())

    def folded(self) -> None:
        pass

    def last_uses(self, keys: list[str]) -> dict[str, datetime]:
        return {}

    def size(self) -> int | None:
        return None

    def check(self) -> str:
        return "disabled (the database answers cache lookups)"
