"""Reference samples for voice cloning: decode, analyse, judge, and normalise an upload.

Decoding is libsndfile's (WAV, FLAC, OGG, MP3); resampling is soxr's; loudness is ITU-R BS.1770
(pyloudnorm); speech detection is WebRTC's VAD.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import pyloudnorm
import soundfile as sf
import soxr

from voicefarm.audio import vad
from voicefarm.audio.codec import CLIP_LEVEL
from voicefarm.errors import SampleRejected, UnreadableSample
from voicefarm.settings import Settings


@dataclass
class Analysis:
    duration: float
    sample_rate: int
    channels: int
    format: str
    loudness_lufs: float
    peak_dbfs: float
    snr_db: float
    speech_ratio: float
    clipping_ratio: float
    warnings: list[str] = field(default_factory=list)


def decode(data: bytes) -> tuple[np.ndarray, int, str]:
    """Samples as float32 (frames, channels), the sample rate, and the container's name."""
    if not data:
        raise SampleRejected("the file is empty")
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            samples = f.read(dtype="float32", always_2d=True)
            return samples, f.samplerate, f.format
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        # libsndfile's message names the Python object it read from: say what was wrong instead.
        reason = str(e).split(": ", 1)[-1] if isinstance(e, sf.LibsndfileError) else "unknown format"
        raise UnreadableSample(f"not a readable audio file (WAV, FLAC, MP3 or OGG): {reason}") from None


def _frame_energies_db(mono: np.ndarray, rate: int) -> np.ndarray:
    frame = max(1, int(0.03 * rate))
    n = len(mono) // frame
    frames = mono[: n * frame].reshape(n, frame)
    energies: np.ndarray = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    return energies


def _speech_ratio(mono: np.ndarray, rate: int) -> float:
    frames = vad.voiced(mono, rate)  # the strictest mode: tones and noise should not pass for speech
    return float(frames.mean()) if frames.size else 0.0


def analyse(samples: np.ndarray, rate: int, fmt: str) -> Analysis:
    mono = samples.mean(axis=1)
    duration = len(mono) / rate
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    energies = _frame_energies_db(mono, rate)
    # Speech alternates loud syllables and pauses; a tone or steady noise does not. The spread
    # between loud and quiet frames estimates the SNR without a separate noise recording.
    snr = float(np.percentile(energies, 95) - np.percentile(energies, 10)) if energies.size else 0.0
    try:
        loudness = float(pyloudnorm.Meter(rate).integrated_loudness(mono))
    except ValueError:  # shorter than one 400 ms gating block
        loudness = float("-inf")
    return Analysis(
        duration=round(duration, 3),
        sample_rate=rate,
        channels=samples.shape[1],
        format=fmt,
        loudness_lufs=round(loudness, 2) if np.isfinite(loudness) else -70.0,
        peak_dbfs=round(20 * np.log10(peak), 2) if peak > 0 else -120.0,
        snr_db=round(snr, 1),
        speech_ratio=round(_speech_ratio(mono, rate), 3),
        clipping_ratio=round(float(np.mean(np.abs(samples) >= CLIP_LEVEL)), 4) if samples.size else 0.0,
    )


SILENT_PEAK_DBFS = -60.0  # a sample that never gets louder than this is refused as silent
QUIET_LUFS = -35.0  # one quieter than this clones, with a warning


def judge(a: Analysis, settings: Settings) -> None:
    """Refuse what cannot clone a voice; add warnings for what will clone it badly."""
    if a.peak_dbfs < SILENT_PEAK_DBFS:
        raise SampleRejected(f"the recording is silent (peak {a.peak_dbfs} dBFS)")
    if not settings.voice_min_seconds <= a.duration <= settings.voice_max_seconds:
        raise SampleRejected(
            f"the recording is {a.duration:.1f} s long; it must be {settings.voice_min_seconds:g}–"
            f"{settings.voice_max_seconds:g} s ({settings.voice_recommended_seconds:g}–"
            f"{settings.voice_max_seconds:g} s recommended)"
        )
    if a.sample_rate < settings.voice_min_sample_rate:
        raise SampleRejected(
            f"the sample rate is {a.sample_rate} Hz; at least {settings.voice_min_sample_rate} Hz is needed"
        )
    if a.clipping_ratio > settings.voice_max_clipping_ratio:
        raise SampleRejected(
            f"{a.clipping_ratio:.1%} of samples are clipped; at most {settings.voice_max_clipping_ratio:.1%} is allowed"
        )
    if a.speech_ratio < settings.voice_min_speech_ratio:
        raise SampleRejected(
            f"too little speech: {a.speech_ratio:.0%} of the recording is speech; at least "
            f"{settings.voice_min_speech_ratio:.0%} is needed"
        )
    if a.snr_db < settings.voice_min_snr_db:
        raise SampleRejected(f"too noisy: estimated SNR {a.snr_db} dB is below {settings.voice_min_snr_db:g} dB")
    if a.duration < settings.voice_recommended_seconds:
        a.warnings.append(f"shorter than {settings.voice_recommended_seconds:g} s, cloning quality will suffer")
    if a.snr_db < settings.voice_min_snr_db + 10:
        a.warnings.append(f"background noise is audible (estimated SNR {a.snr_db} dB)")
    if a.loudness_lufs < QUIET_LUFS:
        a.warnings.append(f"very quiet recording ({a.loudness_lufs} LUFS)")


def normalise(samples: np.ndarray, rate: int, target_rate: int) -> bytes:
    """Mono FLAC at the rate the cloning engines take: what the farm stores."""
    mono = samples.mean(axis=1)
    if rate != target_rate:
        mono = soxr.resample(mono, rate, target_rate)
    buf = io.BytesIO()
    sf.write(buf, np.clip(mono, -1, 1), target_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def load(data: bytes) -> tuple[np.ndarray, int]:
    """A stored (normalised) sample as mono float32 and its rate."""
    samples, rate = sf.read(io.BytesIO(data), dtype="float32")
    return samples, rate
