"""Stand-ins shared by the engine tests (tests/xtts, tests/styletts2) and bench/xtts.py, which
run in the engines' own environments: a voice-like reference signal and an in-memory store."""

from __future__ import annotations

from voicefarm.selftest import voiced_signal

__all__ = ["DictStore", "voiced_signal"]


class DictStore:
    """The engines' conditioning-store interface (BytesStore) over a dict."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def put(self, key: str, data: bytes) -> None:
        self.data[key] = data
