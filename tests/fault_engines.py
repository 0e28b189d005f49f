"""Engines that fail on purpose, to test what the farm does about it. They are plugins like any
other (VOICEFARM_PLUGINS) and claim the Piper voice, so a chain can fall back to Piper.

Each passes its worker's self-test (the probe sentence gets a plausible tone) and fails only
real jobs, as an engine does that breaks after start-up: a GPU that starts failing, a remote
service that goes down. `dud` fails from the start, and its worker must refuse to run.
`stutters` streams its first piece of audio, then fails: a failure a listener has already heard.
`crowd` serves several jobs at once in one process, as a batching engine does, and tests what a
threaded worker does with each of them.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded

from voicefarm.engines.base import Audio, Capabilities, SynthesisRequest, Voice, Word, joined
from voicefarm.settings import get_settings

VOICE = Voice("en_US-joe-medium", "en-US", "joe", 22050)
# While this file exists, `flapping` fails every job; the breaker tests create and remove it.
FLAPPING_FLAG = "VOICEFARM_TEST_FLAPPING_FLAG"
SLOW_SECONDS = "VOICEFARM_TEST_SLOW_SECONDS"
CROWD = 4  # the jobs `crowd` serves at once


def tone(text: str, rate: int = 22050) -> Audio:
    """A plausible length of a quiet 220 Hz tone: passes the quality gate, is no speech."""
    t = np.arange(int(len(text) / 12 * rate)) / rate
    return Audio((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)


class FaultEngine:
    def __init__(self, name: str) -> None:
        self.name = name

    def capabilities(self) -> Capabilities:
        return Capabilities(frozenset({"en"}), voices=(VOICE,), model_version=f"{self.name}-1")

    def load(self) -> None:
        pass

    def synthesize(self, request: SynthesisRequest) -> Audio:
        if request.text == get_settings().self_test_text:
            return tone(request.text)
        return self.fail(request)

    def fail(self, request: SynthesisRequest) -> Audio:
        raise NotImplementedError


class Broken(FaultEngine):
    def fail(self, request: SynthesisRequest) -> Audio:
        raise RuntimeError("this engine always fails")


class Hangs(FaultEngine):
    """Never returns; the soft time limit interrupts it."""

    def fail(self, request: SynthesisRequest) -> Audio:
        time.sleep(3600)
        raise AssertionError("unreachable")


class Stuck(FaultEngine):
    """Ignores the soft time limit, as code stuck in a C call would: only the hard limit ends it."""

    def fail(self, request: SynthesisRequest) -> Audio:
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            with contextlib.suppress(SoftTimeLimitExceeded):
                time.sleep(3600)
        raise AssertionError("unreachable")


class Silent(FaultEngine):
    """Returns silence of a plausible length: only the quality gate can tell."""

    def fail(self, request: SynthesisRequest) -> Audio:
        return Audio(np.zeros(int(len(request.text) / 12 * 22050), dtype=np.float32), 22050)


class Flapping(FaultEngine):
    """Fails while the flag file exists, and works again once it is gone."""

    def fail(self, request: SynthesisRequest) -> Audio:
        if Path(os.environ[FLAPPING_FLAG]).exists():
            raise RuntimeError("flapping: down for now")
        return tone(request.text)


class Slow(FaultEngine):
    """Speaks (a tone) after a few seconds: time for a test to kill the worker in the middle."""

    def fail(self, request: SynthesisRequest) -> Audio:
        time.sleep(float(os.environ.get(SLOW_SECONDS, "3")))
        return tone(request.text)


class Stutters(FaultEngine):
    """Streams one sentence's worth of tone, then fails."""

    def stream(self, request: SynthesisRequest) -> Iterator[Audio]:
        yield tone("A first sentence, heard at once.")
        raise RuntimeError("stutters: failed after its first piece")

    def fail(self, request: SynthesisRequest) -> Audio:
        raise RuntimeError("stutters: failed")


class Timed(FaultEngine):
    """Knows when it says each word, as an engine with its own alignments does: a tone, its
    words evenly spaced, spelled its own way (lower case, no punctuation)."""

    def fail(self, request: SynthesisRequest) -> Audio:
        audio = tone(request.text)
        spoken = [word.strip(".,!?").lower() for word in request.text.split()]
        step = audio.duration / len(spoken)
        words = tuple(Word(word, i * step, (i + 0.8) * step) for i, word in enumerate(spoken))
        return Audio(audio.samples, audio.sample_rate, words)


class Crowd(FaultEngine):
    """Serves CROWD jobs at once (Capabilities.concurrency), and only at once: each run waits
    until CROWD runs are in the engine together, and fails if it stays alone, so a worker that
    ran its jobs one by one fails every one. Then it streams its text's tone in pieces: ten a
    second, slower for a text that starts "Slowly"; a text that starts "Break" fails after its
    first piece, and one that starts "Drag" never ends (its soft time limit stops it)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._together = threading.Barrier(CROWD, timeout=60)

    def capabilities(self) -> Capabilities:
        return replace(super().capabilities(), concurrency=CROWD)

    def stream(self, request: SynthesisRequest) -> Iterator[Audio]:
        if request.text == get_settings().self_test_text:
            yield tone(request.text)
            return
        try:
            self._together.wait()
        except threading.BrokenBarrierError:
            raise RuntimeError(f"crowd: fewer than {CROWD} jobs at once") from None
        pace = 0.5 if request.text.startswith("Slowly") else 0.1
        audio = tone(request.text)
        pieces = np.array_split(audio.samples, 10)
        for n, piece in enumerate(pieces):
            if n == 1 and request.text.startswith("Break"):
                raise RuntimeError("crowd: this job broke after its first piece")
            yield Audio(piece, audio.sample_rate)
            time.sleep(pace)
        while request.text.startswith("Drag"):
            yield Audio(np.zeros(audio.sample_rate // 10, dtype=np.float32), audio.sample_rate)
            time.sleep(pace)

    def synthesize(self, request: SynthesisRequest) -> Audio:
        return joined(self.stream(request))


class Endless(FaultEngine):
    """Streams its text's tone in ten pieces, ten a second; a text that starts "Endless" goes on
    with more pieces for good, so only a cancel (or its soft time limit) stops it."""

    def stream(self, request: SynthesisRequest) -> Iterator[Audio]:
        audio = tone(request.text)
        if request.text == get_settings().self_test_text:
            yield audio
            return
        pieces = np.array_split(audio.samples, 10)
        while True:
            for piece in pieces:
                yield Audio(piece, audio.sample_rate)
                time.sleep(0.1)
            if not request.text.startswith("Endless"):
                return

    def synthesize(self, request: SynthesisRequest) -> Audio:
        return joined(self.stream(request))


class Dud(FaultEngine):
    """Broken from the start: even its self-test probe fails."""

    def synthesize(self, request: SynthesisRequest) -> Audio:
        raise RuntimeError("dud: this model cannot speak")


def broken(settings) -> Broken:
    return Broken("broken")


def hangs(settings) -> Hangs:
    return Hangs("hangs")


def stuck(settings) -> Stuck:
    return Stuck("stuck")


def clogged(settings) -> Stuck:
    """`stuck` on a worker of its own that a test pipelines (tests/farm/test_worker_pipeline.py)."""
    return Stuck("clogged")


def silent(settings) -> Silent:
    return Silent("silent")


def flapping(settings) -> Flapping:
    return Flapping("flapping")


def slow(settings) -> Slow:
    return Slow("slow")


def stutters(settings) -> Stutters:
    return Stutters("stutters")


def timed(settings) -> Timed:
    return Timed("timed")


def crowd(settings) -> Crowd:
    return Crowd("crowd")


def endless(settings) -> Endless:
    return Endless("endless")


def dud(settings) -> Dud:
    return Dud("dud")


def ghost(settings) -> Broken:
    """Configured, but no worker ever runs it."""
    return Broken("ghost")
