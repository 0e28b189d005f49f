"""XTTS engine tests: run with workers/xtts/.venv's interpreter (torch and coqui-tts live there).

Everything runs on a tiny random checkpoint built once per session; nothing is downloaded.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

# Before coqui or transformers are imported: any hub lookup fails instead of hanging.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workers" / "xtts"))
from tiny_checkpoint import build_checkpoint  # noqa: E402

MAX_GEN_TOKENS = 16


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("xtts"), dims="tiny", max_gen_tokens=MAX_GEN_TOKENS)


def voiced_signal(seconds: float = 4.0, sample_rate: int = 22_050, f0: float = 140.0, seed: int = 0) -> np.ndarray:
    """A voice-like test signal: a vibrato'd harmonic series with a syllable envelope, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))) / sample_rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    signal = 0.2 * envelope * harmonics + 0.01 * rng.standard_normal(len(t))
    return signal.astype(np.float32)


@pytest.fixture(scope="session")
def reference() -> tuple[np.ndarray, int]:
    return voiced_signal(), 22_050
