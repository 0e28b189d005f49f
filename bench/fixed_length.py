"""XTTS v2 with each text's length fixed to the audio codes its speech takes (bench.lengths).

Random weights never choose the stop code: without this every text would run to the model's
limit. The GPU report uses it in process and as the farm's `xtts` engine, through
`VOICEFARM_PLUGINS={"xtts": "bench.fixed_length:from_settings"}`. Benchmarks only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from voicefarm_xtts import engine as xtts

from bench.lengths import codes_for
from voicefarm.settings import Settings

if TYPE_CHECKING:
    from TTS.tts.models.xtts import Xtts
    from voicefarm_xtts.batching import Sampling


def bound(model: Xtts, text: str) -> int:
    """Make `model`'s next generation for `text` stop at codes_for(text) codes, and return that
    count: the `min_new_tokens` that keeps it from stopping before."""
    codes = codes_for(text)
    model.gpt.max_gen_mel_tokens = codes
    return codes


def fix_lengths(model: Xtts) -> None:
    """Every text piece `model` speaks generates exactly codes_for(piece) codes."""
    stream = model.inference_stream

    def fixed(text: str, *args: Any, **kwargs: Any) -> Iterator[Any]:
        return stream(text, *args, min_new_tokens=bound(model, text), **kwargs)

    model.inference_stream = fixed  # type: ignore[method-assign]


class FixedLengthXtts(xtts.XttsEngine):
    def load(self) -> None:
        fresh = self._model is None
        super().load()
        if fresh:
            fix_lengths(self._loaded())

    def sampling(self, piece: str, settings: dict[str, float | int]) -> Sampling:
        """The batched GPT's way to the same fixed length: each sequence's own bounds."""
        codes = codes_for(piece)
        return replace(super().sampling(piece, settings), min_codes=codes, max_codes=codes)


def from_settings(settings: Settings) -> xtts.XttsEngine:
    engine = xtts.from_settings(settings)
    engine.__class__ = FixedLengthXtts  # the same engine, configured as the worker's own
    return engine
