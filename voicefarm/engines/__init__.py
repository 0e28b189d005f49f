"""Engine plugins, looked up by name.

A plugin is a factory taking the core settings and returning an Engine. A name resolves, in
order, to `VOICEFARM_PLUGINS` ("module:factory"), then an entry point of the group
`voicefarm.engines` (how the engine packages under workers/ register), then a built-in (Piper,
Google). Only workers construct engines: the API knows them from what their workers advertise
(voicefarm/fleet/catalog.py), so it needs no engine code and no model files.

May import: settings, errors. The torch engines live under workers/, never here.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points

from voicefarm.engines.base import Audio, Capabilities, Engine, SynthesisRequest, Voice
from voicefarm.settings import Settings

GROUP = "voicefarm.engines"
BUILT_IN: dict[str, str] = {
    "google": "voicefarm.engines.google:from_settings",
    "piper": "voicefarm.engines.piper:from_settings",
}

__all__ = ["BUILT_IN", "GROUP", "Audio", "Capabilities", "Engine", "SynthesisRequest", "Voice", "create"]


def _load(spec: str) -> Callable[[Settings], Engine]:
    module, factory = spec.split(":")
    loaded: Callable[[Settings], Engine] = getattr(import_module(module), factory)
    return loaded


def create(name: str, settings: Settings) -> Engine:
    if name in settings.plugins:
        return _load(settings.plugins[name])(settings)
    installed = {ep.name: ep for ep in entry_points(group=GROUP)}
    if name in installed:
        engine: Engine = installed[name].load()(settings)
        return engine
    if name in BUILT_IN:
        return _load(BUILT_IN[name])(settings)
    known = sorted({*settings.plugins, *installed, *BUILT_IN})
    raise ValueError(f"unknown engine {name!r}; known engines here: {', '.join(known)}")
