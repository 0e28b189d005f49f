"""A stand-in for the `cached_path` package on a GPU host that reaches no network.

`styletts2.tts` imports it at import time, and the real one pulls in boto3, botocore and
Google's storage clients: 25 MiB of wheels that a device call has no room to carry. The engine
replaces the package's `cached_path` with its own lookup in the model directory before any
call (voicefarm_styletts2.engine), so this one is never called; if it were, it says why.
"""

from __future__ import annotations

from pathlib import Path


def cached_path(url: str, *args: object, **kwargs: object) -> Path:
    raise RuntimeError(f"no network on this host: {url} must come from the model directory")
