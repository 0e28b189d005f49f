"""XTTS engine tests: run with workers/xtts/.venv's interpreter (torch, coqui-tts and
voicefarm_xtts live there).

Everything runs on a tiny random checkpoint built once per session; nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# Before coqui or transformers are imported: any hub lookup fails instead of hanging.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from tiny_checkpoint import build_checkpoint

from voicefarm.fleet.selftest import voiced_signal

MAX_GEN_TOKENS = 16


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("xtts"), dims="tiny", max_gen_tokens=MAX_GEN_TOKENS)


@pytest.fixture(scope="session")
def reference() -> tuple[np.ndarray, int]:
    return voiced_signal(), 22_050
