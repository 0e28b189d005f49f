"""Joining a document's segments into one recording: each segment's leading and trailing silence
trimmed and its edges faded (no clicks where two meet), the pauses between them put back at the
lengths the document asks for, and one loudness normalisation over the whole (ITU-R BS.1770,
pyloudnorm), so no segment sounds louder than its neighbours."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import soxr

from voicefarm.engines.base import Audio

TARGET_LUFS = -20.0  # speech at a comfortable level, with headroom for its peaks
PEAK = 0.98
FADE_SECONDS = 0.01
FRAME_SECONDS = 0.01
SILENCE_DBFS = -50.0  # a frame quieter than this, at a segment's edge, is trimmed
KEEP_SECONDS = 0.03  # of the silence next to speech: a word's soft start and end


def join_segments(parts: list[tuple[Audio, float]]) -> Audio:
    """The segments in order, each followed by its pause (seconds), at the first one's rate."""
    rate = parts[0][0].sample_rate
    return Audio(normalised(np.concatenate([placed(audio, pause, rate) for audio, pause in parts]), rate), rate)


def heard(audio: Audio, pause: float) -> Audio:
    """One segment as a live stream plays it before the rest exist: placed as in the join, and
    normalised on its own, since the whole is not there yet to measure."""
    return Audio(normalised(placed(audio, pause, audio.sample_rate), audio.sample_rate), audio.sample_rate)


def placed(audio: Audio, pause: float, rate: int) -> np.ndarray:
    """A segment at `rate`, trimmed and faded, followed by its pause."""
    samples = audio.samples.astype(np.float32)
    if audio.sample_rate != rate:
        samples = soxr.resample(samples, audio.sample_rate, rate).astype(np.float32)
    return np.concatenate([faded(trimmed(samples, rate), rate), np.zeros(int(pause * rate), dtype=np.float32)])


def trimmed(samples: np.ndarray, rate: int) -> np.ndarray:
    frame = max(1, int(FRAME_SECONDS * rate))
    count = len(samples) // frame
    if count == 0:
        return samples
    rms = np.sqrt(np.mean(samples[: count * frame].reshape(count, frame).astype(np.float64) ** 2, axis=1))
    loud = np.flatnonzero(rms > 10 ** (SILENCE_DBFS / 20))
    if loud.size == 0:
        return samples
    keep = int(KEEP_SECONDS * rate)
    return samples[max(0, loud[0] * frame - keep) : min(len(samples), (loud[-1] + 1) * frame + keep)]


def faded(samples: np.ndarray, rate: int) -> np.ndarray:
    n = min(int(FADE_SECONDS * rate), len(samples) // 2)
    out = samples.copy()
    ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
    out[:n] *= ramp
    out[len(out) - n :] *= ramp[::-1]
    return out


def normalised(samples: np.ndarray, rate: int) -> np.ndarray:
    """At TARGET_LUFS, its peaks kept under PEAK; as it was when too short to measure."""
    meter = pyloudnorm.Meter(rate)
    if len(samples) < meter.block_size * rate:
        return samples
    loudness = meter.integrated_loudness(samples.astype(np.float64))
    if not np.isfinite(loudness):
        return samples
    out = samples * np.float32(10 ** ((TARGET_LUFS - loudness) / 20))
    peak = float(np.max(np.abs(out)))
    return (out * (PEAK / peak) if peak > PEAK else out).astype(np.float32)
