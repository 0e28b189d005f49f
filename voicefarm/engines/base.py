"""The engine protocol: what every synthesis backend plugs into.

An engine is constructed cheaply (no model load, no heavy import) so the API can ask it
what it offers; a worker process calls `load()` once, before it takes its first job.

An engine that can hand over audio before the whole text is spoken is also `Streaming`: the
worker publishes each piece as it comes (voicefarm.jobs.feeds), so a listener hears the first
sentence while the rest is synthesized.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Voice:
    """A voice: built into an engine, or cloned from an uploaded sample (`cloned`)."""

    id: str
    language: str  # BCP-47-ish, e.g. "en-US"
    name: str = ""
    sample_rate: int = 22050
    version: str = "1"  # changes with the weights or the sample, so cached audio is not reused
    cloned: bool = False
    fallback: str | None = None  # a cloned voice's built-in stand-in on engines that cannot clone


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do, known without loading its model."""

    languages: frozenset[str]  # primary subtags, e.g. {"en"}
    voices: tuple[Voice, ...] = ()
    cloning: bool = False
    device: str = "cpu"
    model_version: str = "unknown"
    # Why the engine cannot run here (missing weights, missing credentials); None when it can.
    unavailable: str | None = None
    # Jobs one loaded model serves at once from as many threads of one process (an engine that
    # batches them, as XTTS decodes several texts in one step); 1: one job at a time.
    concurrency: int = 1

    def to_json(self) -> dict[str, Any]:
        """What a worker advertises in its heartbeat (built-in voices only: no cloned ones)."""
        return {
            "languages": sorted(self.languages),
            "voices": [
                {"id": v.id, "language": v.language, "name": v.name, "sample_rate": v.sample_rate, "version": v.version}
                for v in self.voices
            ],
            "cloning": self.cloning,
            "device": self.device,
            "model_version": self.model_version,
            "unavailable": self.unavailable,
            "concurrency": self.concurrency,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Capabilities:
        return cls(
            frozenset(data["languages"]),
            tuple(Voice(**v) for v in data["voices"]),
            data["cloning"],
            data["device"],
            data["model_version"],
            data.get("unavailable"),
            data.get("concurrency", 1),
        )


@dataclass(frozen=True)
class SynthesisRequest:
    text: str
    voice: str  # a built-in voice id, or a cloned voice's id
    language: str
    speed: float = 1.0
    # Reference sample of a cloned voice (mono float32 PCM and its rate); None for built-ins.
    reference: tuple[np.ndarray, int] | None = None
    reference_key: str | None = None  # stable id of (voice, version) for per-voice caches
    options: dict[str, float | int] = field(default_factory=dict)


@dataclass(frozen=True)
class Word:
    """When one word is heard in an audio, in seconds from its start."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Audio:
    """Mono float32 PCM in [-1, 1]. An engine that knows when it said each word (its own
    alignments) returns them in `words`, and the farm uses them instead of aligning the audio.
    An engine that knows how many phonemes it spoke says so in `phonemes`: the quality gate
    then judges the audio's length by them, since text can be read far longer than it is
    written (digits, symbols, other scripts spelled out by name)."""

    samples: np.ndarray
    sample_rate: int
    words: tuple[Word, ...] | None = None
    phonemes: int | None = None

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


@runtime_checkable
class Engine(Protocol):
    name: str

    def capabilities(self) -> Capabilities: ...

    def load(self) -> None:
        """Load the model; called once per worker process before the first job."""

    def synthesize(self, request: SynthesisRequest) -> Audio: ...


@runtime_checkable
class Streaming(Protocol):
    def stream(self, request: SynthesisRequest) -> Iterator[Audio]:
        """The audio in pieces, in order, as they are made; joined end to end they are what
        `synthesize` returns, so what was streamed and what is stored are the same samples."""
        ...


def stream(engine: Engine, request: SynthesisRequest) -> Iterator[Audio]:
    """The engine's audio piece by piece: one piece from an engine that cannot stream."""
    if isinstance(engine, Streaming):
        yield from engine.stream(request)
    else:
        yield engine.synthesize(request)


def joined(pieces: Iterable[Audio]) -> Audio:
    """Pieces of one stream, end to end; a stream keeps one rate throughout. The pieces' own
    word times, when every piece has them, are moved to where each piece starts."""
    parts = list(pieces)
    if not parts:
        raise ValueError("the engine produced no audio")
    rate = parts[0].sample_rate
    if any(p.sample_rate != rate for p in parts):
        raise ValueError("the engine changed its sample rate within one stream")
    words = None
    if all(p.words is not None for p in parts):
        starts = np.cumsum([0, *(len(p.samples) for p in parts[:-1])]) / rate
        words = tuple(
            Word(w.text, w.start + float(at), w.end + float(at))
            for p, at in zip(parts, starts, strict=True)
            for w in p.words or ()
        )
    counts = [p.phonemes for p in parts if p.phonemes is not None]
    phonemes = sum(counts) if len(counts) == len(parts) else None
    return Audio(np.concatenate([p.samples for p in parts]).astype(np.float32, copy=False), rate, words, phonemes)
