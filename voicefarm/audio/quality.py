"""The quality gate: output no one should be served is a failure, and the job moves on."""

from __future__ import annotations

import re

import numpy as np

from voicefarm.audio import asr
from voicefarm.audio.codec import CLIP_LEVEL
from voicefarm.engines.base import Audio
from voicefarm.errors import AudioRejected

SILENCE_DBFS = -60.0
CLIPPED_THROUGHOUT = 0.2
# Plausible speaking rates at speed 1.0: no voice says more than the upper bound, and the lower
# bound allows for slow voices and padding. Phonemes, where the engine counts them, are what
# was said; characters are only what was written, so their bounds fit ordinary text alone.
# The phoneme bounds hold for Piper over digits, symbols, spelled-out letters and random
# Unicode, at every speed the farm takes, with seconds to spare.
MAX_CHARS_PER_SECOND = 35.0
MIN_CHARS_PER_SECOND = 4.0
MAX_PHONEMES_PER_SECOND = 100.0
MIN_PHONEMES_PER_SECOND = 5.0
PADDING_SECONDS = 2.0


def check(audio: Audio, text: str, speed: float, max_wer: float | None = None, language: str = "en") -> None:
    samples = audio.samples
    if samples.size == 0:
        raise AudioRejected("empty audio")
    if not np.isfinite(samples).all():
        raise AudioRejected("NaN or infinite samples")
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    if rms == 0 or 20 * np.log10(rms) < SILENCE_DBFS:
        raise AudioRejected(f"silence (RMS {20 * np.log10(rms) if rms else -np.inf:.0f} dBFS)")
    clipped = float(np.mean(np.abs(samples) >= CLIP_LEVEL))
    if clipped >= CLIPPED_THROUGHOUT:
        raise AudioRejected(f"clipped throughout ({clipped:.0%} of samples at full scale)")
    if audio.phonemes is not None:
        count, unit, fastest, slowest = audio.phonemes, "phonemes", MAX_PHONEMES_PER_SECOND, MIN_PHONEMES_PER_SECOND
    else:
        count, unit, fastest, slowest = len(text), "characters", MAX_CHARS_PER_SECOND, MIN_CHARS_PER_SECOND
    shortest = count / (fastest * speed)
    longest = count / (slowest * speed) + PADDING_SECONDS
    if not shortest <= audio.duration <= longest:
        raise AudioRejected(
            f"{audio.duration:.2f} s is implausible for {count} {unit} at speed {speed} "
            f"(expected {shortest:.2f}–{longest:.2f} s)"
        )
    if max_wer is not None and language.split("-")[0] == "en":
        heard = asr.transcribe(audio)
        wer = word_error_rate(text, heard)
        if wer > max_wer:
            raise AudioRejected(f"ASR round trip: word error rate {wer:.2f} > {max_wer} (heard {heard!r})")


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


def word_error_rate(expected: str, heard: str) -> float:
    import jiwer

    return float(jiwer.wer(_words(expected), _words(heard) or "<nothing>"))
