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
        """The tier's engines that can speak this request, best first: engines that clone the
        voice, or have it; then, for a cloned voice, engines with its fallback built-in voice;
        last, engines that stand in with a voice of their own in the language. Within each
        group, the tier's order."""
        primary = language.split("-")[0]
        groups: tuple[list[Route], list[Route], list[Route]] = ([], [], [])
        for name in self.settings.tiers[quality]:
            caps = self.available().get(name)
            if caps is None or primary not in caps.languages:
                continue
            if voice.cloned and caps.cloning:
                groups[0].append(Route(name, caps.model_version, voice))
            elif (own := _voice(caps, voice.fallback if voice.cloned else voice.id, primary)) is not None:
                groups[1 if voice.cloned else 0].append(Route(name, caps.model_version, own))
            elif (stand_in := _stand_in(caps, language)) is not None:
                groups[2].append(Route(name, caps.model_version, stand_in))
        return [route for group in groups for route in group]


def _voice(caps: Capabilities, voice_id: str | None, primary: str) -> Voice | None:
    return next((v for v in caps.voices if v.id == voice_id and v.language.split("-")[0] == primary), None)


def _stand_in(caps: Capabilities, language: str) -> Voice | None:
    """The engine's own voice for the language: the exact tag if it has one, else the primary."""
    primary = language.split("-")[0]
    return (next((v for v in caps.voices if v.language.lower() == language.lower()), None)
            or next((v for v in caps.voices if v.language.split("-")[0] == primary), None))
