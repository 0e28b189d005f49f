"""What the farm can synthesize: voices, languages and each quality tier's engine chain.

Built from the configured engines' capabilities, which are known without loading any model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from voicefarm import engines
from voicefarm.engines.base import Capabilities, Voice
from voicefarm.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    """One engine a job may run on, with what goes into its content key."""

    engine: str
    model_version: str


class Catalog:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engines: dict[str, Capabilities] = {}
        for name in settings.engines:
            try:
                self.engines[name] = engines.create(name, settings).capabilities()
            except Exception as e:  # a broken plugin must not take the API down with it
                log.exception("engine %s: capabilities failed", name)
                self.engines[name] = Capabilities(frozenset(), unavailable=f"{type(e).__name__}: {e}")

    def available(self) -> dict[str, Capabilities]:
        return {n: c for n, c in self.engines.items() if c.unavailable is None}

    def voices(self) -> list[tuple[str, Voice]]:
        return [(name, v) for name, caps in self.available().items() for v in caps.voices]

    def voice(self, voice_id: str) -> Voice | None:
        return next((v for _, v in self.voices() if v.id == voice_id), None)

    def routes(self, quality: str, voice_id: str, language: str) -> list[Route]:
        """The tier's engines, in order, that offer this voice in this language."""
        routes = []
        for name in self.settings.tiers[quality]:
            caps = self.available().get(name)
            if caps is None or language.split("-")[0] not in caps.languages:
                continue
            if any(v.id == voice_id for v in caps.voices):
                routes.append(Route(name, caps.model_version))
        return routes
