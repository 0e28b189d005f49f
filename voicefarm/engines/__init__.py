"""Engine plugins, looked up by name.

A plugin is "module:factory", the factory taking the settings and returning an Engine; the
built-in ones are below, and `VOICEFARM_PLUGINS` adds more. Modules are imported only when an
engine is asked for, and must import without their heavy libraries (those load in `load()`), so
the API can read every engine's capabilities without torch or onnxruntime.
"""

from __future__ import annotations

from importlib import import_module

from voicefarm.engines.base import Audio, Capabilities, Engine, SynthesisRequest, Voice
from voicefarm.settings import Settings

PLUGINS: dict[str, str] = {
    "google": "voicefarm.engines.google:from_settings",
    "piper": "voicefarm.engines.piper:from_settings",
    "xtts": "voicefarm.engines.xtts:from_settings",
    "styletts2": "voicefarm.engines.styletts2:from_settings",
}

__all__ = ["PLUGINS", "Audio", "Capabilities", "Engine", "SynthesisRequest", "Voice", "create"]


def create(name: str, settings: Settings) -> Engine:
    plugins = {**PLUGINS, **settings.plugins}
    try:
        module, factory = plugins[name].split(":")
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; known engines: {', '.join(sorted(plugins))}") from None
    return getattr(import_module(module), factory)(settings)
