"""StyleTTS2 engine tests: run with workers/styletts2/.venv's interpreter (torch, styletts2
and voicefarm_styletts2 live there).

Everything runs on a tiny random model built once per session, with the network shut before
anything is imported: a connection or name lookup raises and is recorded in
`network_attempts`, so work that reached for the network fails or shows there.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

network_attempts: list[tuple[Any, ...]] = []
_connect = socket.socket.connect


def _guarded_connect(sock: socket.socket, address: Any) -> None:
    if sock.family == socket.AF_UNIX:
        return _connect(sock, address)
    network_attempts.append(("connect", address))
    raise OSError(f"network access in a test: connect {address}")


def _refused_lookup(*args: Any, **kwargs: Any) -> Any:
    network_attempts.append(("getaddrinfo", *args))
    raise socket.gaierror(f"network access in a test: getaddrinfo {args}")


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.getaddrinfo = _refused_lookup

from tiny_model import build_model_dir  # noqa: E402
from voicefarm_styletts2.engine import StyleTTS2Engine  # noqa: E402
from voicefarm_torchkit import DictStore  # noqa: E402

from voicefarm.fleet.selftest import voiced_signal  # noqa: E402

FRAMES_PER_TOKEN = 2
# Samples per duration frame: the mel hop (300) doubled, as the decoder upsamples its frames
# twice before the vocoder's 300x.
FRAME_SAMPLES = 600


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_dir(tmp_path_factory.mktemp("styletts2"), frames_per_token=FRAMES_PER_TOKEN)


@pytest.fixture(scope="session")
def store() -> DictStore:
    return DictStore()


@pytest.fixture(scope="session")
def engine(model_dir: Path, store: DictStore) -> StyleTTS2Engine:
    """One loaded fp32 engine for the session (a load takes seconds), with a style store."""
    engine = StyleTTS2Engine(model_dir, device="cpu", style_store=store)
    engine.load()
    return engine


@pytest.fixture(scope="session")
def reference() -> tuple[np.ndarray, int]:
    return voiced_signal(), 22_050
