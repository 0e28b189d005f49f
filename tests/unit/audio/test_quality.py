"""The quality gate: what no one should be served is refused, with the reason; what an engine
really says, however odd its text, is not."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from voicefarm import engines, errors
from voicefarm.audio import quality
from voicefarm.engines.base import Audio, Engine, SynthesisRequest
from voicefarm.settings import Settings

TONE = 0.3 * np.sin(np.arange(22050) / 10).astype(np.float32)


@pytest.mark.parametrize(
    ("samples", "reason"),
    [
        (np.zeros(0, np.float32), "empty audio"),
        (np.full(22050, np.nan, np.float32), "NaN or infinite samples"),
        (np.zeros(22050, np.float32), "silence"),
        (np.ones(22050, np.float32), "clipped throughout"),
        (np.tile(TONE, 20), "20.00 s is implausible for 12 characters"),
    ],
)
def test_the_quality_gate_refuses_with_a_reason(samples: np.ndarray, reason: str) -> None:
    with pytest.raises(errors.AudioRejected, match=reason):
        quality.check(Audio(samples, 22050), "Twelve chars", 1.0)


def test_the_quality_gate_passes_plausible_audio() -> None:
    quality.check(Audio(TONE, 22050), "Twelve chars", 1.0)


def test_phonemes_the_engine_counted_set_the_bounds() -> None:
    with pytest.raises(errors.AudioRejected, match=r"20\.00 s is implausible for 12 phonemes"):
        quality.check(Audio(np.tile(TONE, 20), 22050, phonemes=12), "Twelve chars", 1.0)
    with pytest.raises(errors.AudioRejected, match=r"1\.00 s is implausible for 400 phonemes"):
        quality.check(Audio(TONE, 22050, phonemes=400), "Twelve chars", 1.0)


@cache
def piper() -> Engine:
    engine = engines.create("piper", Settings())
    engine.load()
    return engine


@pytest.mark.parametrize(
    ("text", "speed"),
    [
        ("999999999999999999999", 1.5),  # read as a number of quintillions
        ("©®™°±µ¶§£€¥" * 2, 1.5),  # each symbol by its name
        ("A " * 30, 0.5),  # far quicker to say than to write
    ],
)
def test_piper_reading_text_longer_or_shorter_than_it_is_written_passes(text: str, speed: float) -> None:
    audio = piper().synthesize(SynthesisRequest(text, "en_US-joe-medium", "en-US", speed))
    by_characters = (
        len(text) / (quality.MAX_CHARS_PER_SECOND * speed),
        len(text) / (quality.MIN_CHARS_PER_SECOND * speed) + quality.PADDING_SECONDS,
    )
    assert not by_characters[0] <= audio.duration <= by_characters[1]  # what characters alone would refuse
    assert audio.phonemes is not None and audio.phonemes > 0
    quality.check(audio, text, speed)
