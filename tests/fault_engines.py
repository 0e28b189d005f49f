"""Engines that fail on purpose, to test what the farm does about it. They are plugins like any
other (VOICEFARM_PLUGINS) and claim the Piper voice, so a chain can fall back to Piper.

Each passes its worker's self-test (the probe sentence gets a plausible tone) and fails only
real jobs, as an engine does that breaks after start-up: a GPU that starts failing, a remote
service that goes down. `dud` fails from the start, and its worker must refuse to run.
`stutters` streams its first piece of audio, then fails: a failure a listener has already heard.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded

from voicefarm.engines.base import Audio, Capabilities, SynthesisRequest, Voice, Word
from voicefarm.settings import get_settings

VOICE = Voice("en_US-joe-medium", "en-US", "joe", 22050)
# While this file exists, `flapping` fails every job; the breaker tests create and remove it.
FLAPPING_FLAG = "VOICEFARM_TEST_FLAPPING_FLAG"
SLOW_SECONDS = "VOICEFARM_TEST_SLOW_SECONDS"


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


def dud(settings) -> Dud:
    return Dud("dud")


def ghost(settings) -> Broken:
    """Configured, but no worker ever runs it."""
    return Broken("ghost")
