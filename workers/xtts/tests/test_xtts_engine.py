"""XttsEngine on a tiny random checkpoint: availability, synthesis, latents caching, splitting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import MAX_GEN_TOKENS
from voicefarm_torchkit import DictStore
from voicefarm_xtts.engine import LANGUAGES, SAMPLE_RATE, XttsEngine

from voicefarm.engines.base import Engine, SynthesisRequest
from voicefarm.engines.text import crossfaded, split_text
from voicefarm.fleet.selftest import voiced_signal

XTTS_LANGUAGES = {"en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "zh", "hu", "ko", "ja", "hi"}


def request(
    reference: tuple[np.ndarray, int], text: str = "Hello there, how are you?", key: str | None = "voice-a:1", **kw
) -> SynthesisRequest:
    return SynthesisRequest(text=text, voice="cloned", language="en", reference=reference, reference_key=key, **kw)


@pytest.fixture
def engine(checkpoint: Path) -> XttsEngine:
    engine = XttsEngine(checkpoint, device="cpu")
    engine.load()
    return engine


def piece_samples(codes: int = MAX_GEN_TOKENS) -> int:
    """Samples XTTS makes from `codes` GPT latents: random weights never stop, so every piece
    has MAX_GEN_TOKENS; the decoder stretches each 4x, resamples 22.05 to 24 kHz, then 256x."""
    return int(4 * codes * SAMPLE_RATE / 22_050) * 256


def test_capabilities_of_a_complete_checkpoint(checkpoint: Path) -> None:
    engine = XttsEngine(checkpoint)
    caps = engine.capabilities()
    assert isinstance(engine, Engine)
    assert engine.name == "xtts"
    assert caps.unavailable is None
    assert caps.languages == XTTS_LANGUAGES == LANGUAGES
    assert caps.cloning and caps.voices == ()
    assert caps.model_version.startswith("xtts-v2-")
    assert XttsEngine(checkpoint).capabilities().model_version == caps.model_version


def test_import_and_capabilities_need_no_torch(checkpoint: Path) -> None:
    code = (
        "import sys; from voicefarm_xtts.engine import XttsEngine; "
        f"XttsEngine({str(checkpoint)!r}).capabilities(); "
        "assert 'torch' not in sys.modules and 'TTS' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_file_is_named(checkpoint: Path, tmp_path: Path) -> None:
    for name in ("config.json", "model.pth"):
        (tmp_path / name).symlink_to(checkpoint / name)
    engine = XttsEngine(tmp_path)
    assert "vocab.json" in (engine.capabilities().unavailable or "")
    with pytest.raises(FileNotFoundError, match=r"vocab\.json"):
        engine.load()

    absent = XttsEngine(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in (absent.capabilities().unavailable or "")
    assert XttsEngine(None).capabilities().unavailable


def test_synthesize_a_sentence(engine: XttsEngine, reference: tuple[np.ndarray, int]) -> None:
    audio = engine.synthesize(request(reference))
    assert audio.sample_rate == SAMPLE_RATE == 24_000
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert len(audio.samples) == piece_samples()
    assert np.isfinite(audio.samples).all() and np.abs(audio.samples).max() <= 1.0


def test_options_and_speed_pass_through(engine: XttsEngine, reference: tuple[np.ndarray, int]) -> None:
    options = {"temperature": 0.5, "length_penalty": 1.0, "repetition_penalty": 5.0, "top_k": 10, "top_p": 0.5}
    fast = engine.synthesize(request(reference, speed=2.0, options=options))
    # speed 2 halves the GPT latents before the vocoder.
    assert len(fast.samples) == piece_samples(MAX_GEN_TOKENS // 2)


def test_latents_are_computed_once_per_reference_key(engine: XttsEngine, reference: tuple[np.ndarray, int]) -> None:
    engine.synthesize(request(reference, key="voice-a:1"))
    engine.synthesize(request(reference, text="A second job.", key="voice-a:1"))
    assert engine.latents_computed == 1
    engine.synthesize(request((voiced_signal(f0=220.0, seed=1), 16_000), key="voice-b:1"))
    assert engine.latents_computed == 2


def test_latents_cache_is_bounded(checkpoint: Path, reference: tuple[np.ndarray, int]) -> None:
    engine = XttsEngine(checkpoint, device="cpu", latents_cache_size=1)
    engine.load()
    for key in ("a", "b", "a"):
        engine.synthesize(request(reference, key=key))
    assert engine.latents_computed == 3


def test_latents_store_spares_a_fresh_engine(checkpoint: Path, reference: tuple[np.ndarray, int]) -> None:
    store = DictStore()
    first = XttsEngine(checkpoint, device="cpu", latents_store=store)
    first.load()
    first.synthesize(request(reference))
    assert first.latents_computed == 1 and len(store.data) == 1

    second = XttsEngine(checkpoint, device="cpu", latents_store=store)
    second.load()
    audio = second.synthesize(request(reference))
    assert second.latents_computed == 0
    assert np.isfinite(audio.samples).all()


def test_bf16_autocast_keeps_the_vocoder_in_fp32(checkpoint: Path, reference: tuple[np.ndarray, int]) -> None:
    # The CUDA path, on the CPU's autocast: the GPT runs in bf16, the wav still comes out fp32.
    engine = XttsEngine(checkpoint, device="cpu", bf16=True)
    engine.load()
    audio = engine.synthesize(request(reference))
    assert audio.samples.dtype == np.float32 and np.isfinite(audio.samples).all()
    assert len(audio.samples) == piece_samples()


def test_split_text_at_sentences_within_the_limit() -> None:
    text = "First sentence here. Second one is a bit longer! Is this the third? Yes, 3.5 apples."
    assert split_text(text, 250) == [text]
    pieces = split_text(text, 45)
    assert pieces == ["First sentence here.", "Second one is a bit longer!", "Is this the third? Yes, 3.5 apples."]
    assert all(len(p) <= 45 for p in pieces)

    long_sentence = " ".join(["word"] * 40) + "."
    assert all(len(p) <= 50 for p in split_text(long_sentence, 50))
    assert " ".join(split_text(long_sentence, 50)) == long_sentence

    chinese = "你好世界。今天天气很好！我们去公园吧？"
    assert split_text(chinese, 12) == ["你好世界。今天天气很好！", "我们去公园吧？"]
    assert split_text("", 250) == []


def test_long_text_is_split_and_joined(engine: XttsEngine, reference: tuple[np.ndarray, int]) -> None:
    sentence = "This is one of several sentences that together run past the character limit of english."
    text = " ".join([sentence] * 4)
    assert len(text) > 250
    pieces = split_text(text, 250)
    assert len(pieces) == 2
    audio = engine.synthesize(request(reference, text=text))
    crossfade = int(0.01 * SAMPLE_RATE)
    assert len(audio.samples) == len(pieces) * piece_samples() - crossfade


def test_stream_hands_over_chunks_of_the_same_audio(checkpoint: Path, reference: tuple[np.ndarray, int]) -> None:
    import torch

    engine = XttsEngine(checkpoint, device="cpu", stream_chunk_size=4)
    engine.load()
    text = "A first sentence. And then a second one."
    torch.manual_seed(0)
    chunks = list(engine.stream(request(reference, text=text)))
    # Four codes a chunk, MAX_GEN_TOKENS codes a piece: several chunks before the piece is done.
    assert len(chunks) >= MAX_GEN_TOKENS // 4
    assert all(c.sample_rate == SAMPLE_RATE and c.samples.dtype == np.float32 for c in chunks)
    torch.manual_seed(0)
    whole = engine.synthesize(request(reference, text=text))
    np.testing.assert_array_equal(np.concatenate([c.samples for c in chunks]), whole.samples)


def test_pieces_are_crossfaded() -> None:
    a = np.ones(1000, dtype=np.float32)
    b = -np.ones(1000, dtype=np.float32)
    joined = np.concatenate(list(crossfaded([a, b], 24_000)))
    assert len(joined) == 2000 - 240
    # A ramp from +1 to -1 instead of a step: no sample-to-sample jump near 2.
    assert np.abs(np.diff(joined)).max() < 0.01


def test_unsupported_language_and_missing_reference(engine: XttsEngine, reference: tuple[np.ndarray, int]) -> None:
    with pytest.raises(ValueError, match="sw"):
        engine.synthesize(
            SynthesisRequest(text="Habari", voice="v", language="sw", reference=reference, reference_key="k")
        )
    with pytest.raises(ValueError, match="reference"):
        engine.synthesize(SynthesisRequest(text="Hello", voice="v", language="en"))
