"""Engine plugins, looked up by name.

Each plugin module exposes `from_settings(settings) -> Engine`. Modules are imported only when
an engine is asked for, and must import without their heavy libraries (those load in `load()`),
so the API can read every engine's capabilities without torch or onnxruntime.
"""

from __future__ import annotations

from importlib import import_module

from voicefarm.engines.base import Audio, Capabilities, Engine, SynthesisRequest, Voice
from voicefarm.settings import Settings

PLUGINS: dict[str, str] = {
    "piper": "voicefarm.engines.piper",
    "xtts": "voicefarm.engines.xtts",
}

__all__ = ["Audio", "Capabilities", "Engine", "SynthesisRequest", "Voice", "PLUGINS", "create", "queue_name"]


def create(name: str, settings: Settings) -> Engine:
    try:
        module = PLUGINS[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; known engines: {', '.join(sorted(PLUGINS))}") from None
    return import_module(module).from_settings(settings)


def queue_name(engine: str) -> str:
    return f"tts.{engine}"
