"""Stand-ins shared by the engine tests (tests/xtts, tests/styletts2) and bench/xtts.py, which
run in the engines' own environments: a voice-like reference signal and an in-memory store."""

from __future__ import annotations

import numpy as np


def voiced_signal(seconds: float = 4.0, sample_rate: int = 22_050, f0: float = 140.0, seed: int = 0) -> np.ndarray:
    """A voice-like test signal: a vibrato'd harmonic series with a syllable envelope, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))) / sample_rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    signal = 0.2 * envelope * harmonics + 0.01 * rng.standard_normal(len(t))
    return signal.astype(np.float32)


class DictStore:
    """The engines' conditioning-store interface (BytesStore) over a dict."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def put(self, key: str, data: bytes) -> None:
        self.data[key] = data
