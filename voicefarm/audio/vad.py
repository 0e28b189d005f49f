"""Where there is speech: WebRTC's voice activity detector, frame by frame."""

from __future__ import annotations

import numpy as np
import soxr
import webrtcvad

RATE = 16000
FRAME = 480  # samples: 30 ms at 16 kHz, one of the frame lengths WebRTC's VAD takes
FRAME_SECONDS = FRAME / RATE


def voiced(samples: np.ndarray, rate: int, mode: int = 3) -> np.ndarray:
    """One bool per 30 ms frame: speech or not. `mode` 0–3, 3 the strictest (what tones and
    noise should not pass); a trailing part frame is left out."""
    pcm = soxr.resample(samples, rate, RATE) if rate != RATE else samples
    pcm16 = (np.clip(pcm, -1, 1) * 32767).astype("<i2")
    vad = webrtcvad.Vad(mode)
    n = len(pcm16) // FRAME
    return np.array([vad.is_speech(pcm16[i * FRAME : (i + 1) * FRAME].tobytes(), RATE) for i in range(n)], dtype=bool)
