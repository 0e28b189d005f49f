"""What the farm can synthesize: voices, languages and each quality tier's engine chain.

Built from what workers advertise (voicefarm/fleet/heartbeat.py): each engine's last known
capabilities, and which engines have a live worker. The API constructs no engine, so it needs
neither engine code nor model files. An engine whose workers are gone keeps its voices and its
place in the chains: its jobs wait in its queue while it restarts (jobs.recording starts a job on
an engine with a live worker when the chain has one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from anyio import to_thread
from sqlalchemy import select
from sqlalchemy.orm import Session

from voicefarm.engines.base import Capabilities, Voice
from voicefarm.fleet.heartbeat import Recent, live_workers
from voicefarm.settings import Settings, get_settings
from voicefarm.store.models import EngineCapabilities


@dataclass(frozen=True)
class Candidate:
    """One engine a job may run on, the voice it speaks there, and its model version: what goes
    into the content key besides the request itself."""

    engine: str
    model_version: str
    voice: Voice


@dataclass(frozen=True)
class Catalog:
    settings: Settings
    engines: dict[str, Capabilities] = field(default_factory=dict)  # last known, by engine
    live: frozenset[str] = frozenset()  # engines with a live worker

    def voices(self) -> list[tuple[str, Voice]]:
        """Every known built-in voice with its engine, live or not."""
        return [(name, v) for name, caps in self.engines.items() for v in caps.voices]

    def voice(self, voice_id: str) -> Voice | None:
        return next((v for _, v in self.voices() if v.id == voice_id), None)

    def unadvertised(self, quality: str) -> list[str]:
        """The tier's configured engines that no worker has advertised yet: a voice the catalog
        lacks, or one the tier cannot speak yet, may be theirs."""
        return [
            name for name in self.settings.tiers[quality] if name in self.settings.engines and name not in self.engines
        ]

    def candidates(self, quality: str, voice: Voice, language: str) -> list[Candidate]:
        """The tier's engines that can speak this request, best first: engines that clone the
        voice, or have it; then, for a cloned voice, engines with its fallback built-in voice;
        last, engines that stand in with a voice of their own in the language. Within each
        group, the tier's order."""
        primary = language.split("-")[0]
        groups: tuple[list[Candidate], list[Candidate], list[Candidate]] = ([], [], [])
        for name in self.settings.tiers[quality]:
            caps = self.engines.get(name)
            if caps is None or primary not in caps.languages:
                continue
            if voice.cloned and caps.cloning:
                groups[0].append(Candidate(name, caps.model_version, voice))
            elif (own := _voice(caps, voice.fallback if voice.cloned else voice.id, primary)) is not None:
                groups[1 if voice.cloned else 0].append(Candidate(name, caps.model_version, own))
            elif (stand_in := _stand_in(caps, language)) is not None:
                groups[2].append(Candidate(name, caps.model_version, stand_in))
        return [candidate for group in groups for candidate in group]


def load(s: Session, settings: Settings) -> Catalog:
    """The catalog from the database. Engines come in `settings.engines`' order, then by name:
    where two engines offer a voice id, the first one's voice is the one a request gets."""
    rows = {row.engine: row.capabilities for row in s.scalars(select(EngineCapabilities))}
    order = [*[name for name in settings.engines if name in rows], *sorted(set(rows) - set(settings.engines))]
    known = {name: Capabilities.from_json(rows[name]) for name in order}
    return Catalog(settings, known, frozenset(live_workers(s, settings)))


class Catalogs(Recent[Catalog]):
    """load(), remembered for a moment."""

    def __init__(self, settings: Settings, ttl: float = 2.0) -> None:
        super().__init__(lambda s: load(s, settings), ttl)


@lru_cache
def catalogs() -> Catalogs:
    return Catalogs(get_settings())


def get_catalog() -> Catalog:
    """The catalog, at most a moment old; it may read the database, so call it off the event loop."""
    return catalogs()()


async def current_catalog() -> Catalog:
    """get_catalog() for async code: a thread only when the remembered one is stale."""
    fresh = catalogs().fresh
    return fresh if fresh is not None else await to_thread.run_sync(catalogs())


def _voice(caps: Capabilities, voice_id: str | None, primary: str) -> Voice | None:
    return next((v for v in caps.voices if v.id == voice_id and v.language.split("-")[0] == primary), None)


def _stand_in(caps: Capabilities, language: str) -> Voice | None:
    """The engine's own voice for the language: the exact tag if it has one, else the primary."""
    primary = language.split("-")[0]
    return next((v for v in caps.voices if v.language.lower() == language.lower()), None) or next(
        (v for v in caps.voices if v.language.split("-")[0] == primary), None
    )
