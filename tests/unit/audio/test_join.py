"""Joining a document's segments: trimmed edges, the pauses put back, no clicks, one loudness;
and a segment as a live stream plays it before the rest exist."""

from __future__ import annotations

import numpy as np
import pyloudnorm

from voicefarm.audio.join import KEEP_SECONDS, TARGET_LUFS, heard, join_segments, placed
from voicefarm.engines.base import Audio

RATE = 16000


def spoken(seconds: float, level: float, silence: float = 0.4) -> Audio:
    """A tone standing for speech, with `silence` seconds of quiet on each side."""
    tone = level * np.sin(2 * np.pi * 200 * np.arange(int(seconds * RATE)) / RATE)
    quiet = np.zeros(int(silence * RATE))
    return Audio(np.concatenate([quiet, tone, quiet]).astype(np.float32), RATE)


def loudness(samples: np.ndarray) -> float:
    return float(pyloudnorm.Meter(RATE).integrated_loudness(samples.astype(np.float64)))


def test_segments_are_trimmed_paused_and_normalised_once() -> None:
    quiet, loud = spoken(1.0, 0.05), spoken(1.0, 0.5)
    whole = join_segments([(quiet, 0.75), (loud, 0.0)])
    # Each segment's edge silence trimmed to a few frames, then exactly the pause asked for.
    assert abs(whole.duration - (2.0 + 4 * KEEP_SECONDS + 0.75)) < 0.02
    assert abs(loudness(whole.samples) - TARGET_LUFS) < 0.5
    # One gain for the whole: the quiet segment stays ten times quieter than the loud one.
    half = len(whole.samples) // 2
    ratio = np.abs(whole.samples[half:]).max() / np.abs(whole.samples[:half]).max()
    assert 9 < ratio < 11
    assert np.abs(np.diff(whole.samples)).max() < 0.2  # faded edges: no step where two meet


def test_a_heard_segment_is_placed_as_in_the_join_at_its_own_loudness() -> None:
    segment = spoken(1.0, 0.05)
    live = heard(segment, 0.5)
    assert len(live.samples) == len(placed(segment, 0.5, RATE))
    assert abs(loudness(live.samples) - TARGET_LUFS) < 0.5
    assert not live.samples[-int(0.5 * RATE) :].any()  # its pause, silent
