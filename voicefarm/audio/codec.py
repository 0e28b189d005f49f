"""Encoding synthesized PCM into the formats clients ask for, at the rate they ask for.

libsndfile (soundfile) writes WAV, FLAC, MP3, Ogg Vorbis, Ogg Opus and raw PCM; PyAV (FFmpeg)
writes AAC; soxr resamples. Live streams are encoded piece by piece in voicefarm.audio.encoder.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from voicefarm.engines.base import Audio

# The only rates these codecs encode (libsndfile's MP3, FFmpeg's AAC). Any other rate a request
# may ask for becomes the next one up: a job must not fail on every engine over its rate.
CODEC_RATES = {
    "opus": (8000, 12000, 16000, 24000, 48000),
    "mp3": (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000),
    "aac": (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000),
}
CLIP_LEVEL = 0.999  # a float sample at or above this has hit full scale


@dataclass(frozen=True)
class Format:
    media_type: str
    container: str | None = None  # libsndfile's name; None: encoded otherwise
    subtype: str | None = None
    endian: str = "FILE"  # the container's own; raw PCM has no header to say it, so it is fixed


FORMATS: dict[str, Format] = {
    "wav": Format("audio/wav", "WAV", "PCM_16"),
    "flac": Format("audio/flac", "FLAC", "PCM_16"),
    "mp3": Format("audio/mpeg", "MP3", "MPEG_LAYER_III"),
    "ogg": Format("audio/ogg", "OGG", "VORBIS"),
    "opus": Format("audio/ogg; codecs=opus", "OGG", "OPUS"),
    "aac": Format("audio/aac"),  # ADTS stream, via PyAV
    "pcm": Format("audio/L16", "RAW", "PCM_16", "LITTLE"),  # raw signed 16-bit little-endian mono, no header
}
MASTER = "flac"  # every synthesis also keeps a lossless master, so other formats never re-synthesize


def content_type(fmt: str) -> str:
    return FORMATS[fmt].media_type


def output_rate(fmt: str, native: int, requested: int | None) -> int:
    rate = requested or native
    allowed = CODEC_RATES.get(fmt)
    if allowed is not None and rate not in allowed:
        rate = min((r for r in allowed if r >= rate), default=allowed[-1])
    return rate


def encode(audio: Audio, fmt: str, sample_rate: int | None = None) -> tuple[bytes, int]:
    """The encoded bytes and the rate they are at."""
    rate = output_rate(fmt, audio.sample_rate, sample_rate)
    samples = np.clip(audio.samples, -1.0, 1.0).astype(np.float32)
    if rate != audio.sample_rate:
        samples = soxr.resample(samples, audio.sample_rate, rate).astype(np.float32)
    if fmt == "aac":
        return _aac(samples, rate), rate
    spec = FORMATS[fmt]
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=spec.container, subtype=spec.subtype, endian=spec.endian)
    return buf.getvalue(), rate


def _aac(samples: np.ndarray, rate: int) -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="adts") as out:
        stream = out.add_stream("aac", rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="fltp", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buf.getvalue()


def decode(data: bytes) -> Audio:
    """A master (or any libsndfile format) back to mono float32."""
    samples, rate = sf.read(io.BytesIO(data), dtype="float32")
    return Audio(samples if samples.ndim == 1 else samples.mean(axis=1), rate)
