"""Engines that fail on purpose, to test what the farm does about it. They are plugins like any
other (VOICEFARM_PLUGINS) and claim the Piper voice, so a chain can fall back to Piper."""

from __future__ import annotations

import time

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded

from voicefarm.engines.base import Audio, Capabilities, SynthesisRequest, Voice

VOICE = Voice("en_US-joe-medium", "en-US", "joe", 22050)


class FaultEngine:
    def __init__(self, name: str) -> None:
        self.name = name

    def capabilities(self) -> Capabilities:
        return Capabilities(frozenset({"en"}), voices=(VOICE,), model_version=f"{self.name}-1")

    def load(self) -> None:
        pass

    def synthesize(self, request: SynthesisRequest) -> Audio:
        raise NotImplementedError


class Broken(FaultEngine):
    def synthesize(self, request: SynthesisRequest) -> Audio:
        raise RuntimeError("this engine always fails")


class Hangs(FaultEngine):
    """Never returns; the soft time limit interrupts it."""

    def synthesize(self, request: SynthesisRequest) -> Audio:
        time.sleep(3600)
        raise AssertionError("unreachable")


class Stuck(FaultEngine):
    """Ignores the soft time limit, as code stuck in a C call would: only the hard limit ends it."""

    def synthesize(self, request: SynthesisRequest) -> Audio:
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            try:
                time.sleep(3600)
            except SoftTimeLimitExceeded:
                pass
        raise AssertionError("unreachable")


class Silent(FaultEngine):
    """Returns silence of a plausible length: only the quality gate can tell."""

    def synthesize(self, request: SynthesisRequest) -> Audio:
        return Audio(np.zeros(int(len(request.text) / 12 * 22050), dtype=np.float32), 22050)


def broken(settings) -> Broken:
    return Broken("broken")


def hangs(settings) -> Hangs:
    return Hangs("hangs")


def stuck(settings) -> Stuck:
    return Stuck("stuck")


def silent(settings) -> Silent:
    return Silent("silent")


def ghost(settings) -> Broken:
    """Configured, but no worker ever runs it."""
    return Broken("ghost")
