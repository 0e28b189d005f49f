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
    """One engine a job may run on, the voice it speaks there, and its model version: what goes
    into the content key besides the request itself."""

    engine: str
    model_version: str
    voice: Voice


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

    def routes(self, quality: str, voice: Voice, language: str) -> list[Route]:
        """The tier's engines, in order, that can speak this voice in this language. A cloned
        voice goes to engines that clone, and to the others as its fallback built-in voice."""
        routes = []
        for name in self.settings.tiers[quality]:
            caps = self.available().get(name)
            if caps is None or language.split("-")[0] not in caps.languages:
                continue
            if voice.cloned and caps.cloning:
                routes.append(Route(name, caps.model_version, voice))
                continue
            wanted = voice.fallback if voice.cloned else voice.id
            spoken = next((v for v in caps.voices if v.id == wanted), None)
            if spoken is not None and spoken.language.split("-")[0] == language.split("-")[0]:
                routes.append(Route(name, caps.model_version, spoken))
        return routes
