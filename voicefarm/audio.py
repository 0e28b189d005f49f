"""Encoding synthesized PCM into the formats clients ask for (libsndfile via soundfile)."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from voicefarm.engines.base import Audio

# format -> (libsndfile container, subtype, MIME type)
FORMATS: dict[str, tuple[str, str, str]] = {
    "wav": ("WAV", "PCM_16", "audio/wav"),
    "flac": ("FLAC", "PCM_16", "audio/flac"),
    "ogg": ("OGG", "VORBIS", "audio/ogg"),
    "mp3": ("MP3", "MPEG_LAYER_III", "audio/mpeg"),
}


def content_type(fmt: str) -> str:
    return FORMATS[fmt][2]


def encode(audio: Audio, fmt: str) -> bytes:
    container, subtype, _ = FORMATS[fmt]
    buf = io.BytesIO()
    sf.write(buf, np.clip(audio.samples, -1.0, 1.0), audio.sample_rate, format=container, subtype=subtype)
    return buf.getvalue()
