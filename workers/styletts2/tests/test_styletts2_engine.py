"""StyleTTS2Engine on a tiny random model: availability, offline loading, synthesis, style caching."""

from __future__ import annotations

import pickle
import socket
import subprocess
import sys
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import torch
import yaml
from conftest import FRAME_SAMPLES, FRAMES_PER_TOKEN, network_attempts
from voicefarm_styletts2.engine import CONFIG, END_PULSE_SAMPLES, FILES, SAMPLE_RATE, StyleTTS2Engine
from voicefarm_torchkit import DictStore

from voicefarm.engines.base import Engine, SynthesisRequest
from voicefarm.engines.text import split_text
from voicefarm.fleet.selftest import voiced_signal

CROSSFADE = int(0.01 * SAMPLE_RATE)  # join_pieces' overlap


def request(
    reference: tuple[np.ndarray, int], text: str = "Hello there, how are you?", key: str | None = "voice-a:1", **kw
) -> SynthesisRequest:
    return SynthesisRequest(text=text, voice="cloned", language="en", reference=reference, reference_key=key, **kw)


def piece_samples(engine: StyleTTS2Engine, text: str, frames_per_token: int = FRAMES_PER_TOKEN) -> int:
    """The tiny model gives every phoneme token the same number of frames, so a piece's length
    follows from its tokens; the package trims the decoder's end pulse."""
    return len(engine._tokens(text)) * frames_per_token * FRAME_SAMPLES - END_PULSE_SAMPLES


def test_tiny_model_has_every_file_at_the_smallest_sizes(model_dir: Path) -> None:
    written = {str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if p.is_file()}
    assert written == {*FILES.values(), "voices/default.wav"}
    params = yaml.safe_load((model_dir / CONFIG).read_text())["model_params"]
    # The decoder's hard-coded blocks fix these; everything else is shrunk.
    assert params["hidden_dim"] == 512 and params["decoder"]["upsample_initial_channel"] == 512
    assert params["n_layer"] == 1 and params["dim_in"] == 8
    plbert = yaml.safe_load((model_dir / FILES["BERT_CONFIG_URL"]).read_text())["model_params"]
    assert plbert["num_hidden_layers"] == 1 and plbert["hidden_size"] == 32


def test_capabilities_of_a_complete_model(model_dir: Path) -> None:
    engine = StyleTTS2Engine(model_dir)
    caps = engine.capabilities()
    assert isinstance(engine, Engine)
    assert engine.name == "styletts2"
    assert caps.unavailable is None
    assert caps.languages == {"en"}
    # Cloned voices, and one built-in voice whose reference sample ships with the model.
    assert caps.cloning and [(v.id, v.language, v.sample_rate) for v in caps.voices] == [
        ("styletts2-default", "en-US", 24000)
    ]
    assert caps.model_version.startswith("styletts2-libritts-")
    assert StyleTTS2Engine(model_dir).capabilities().model_version == caps.model_version


def test_import_and_capabilities_need_no_torch(model_dir: Path) -> None:
    code = (
        "import sys; from voicefarm_styletts2.engine import StyleTTS2Engine; "
        f"StyleTTS2Engine({str(model_dir)!r}).capabilities(); "
        "assert not {'torch', 'styletts2', 'nltk'} & set(sys.modules), 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_files_are_named(model_dir: Path, tmp_path: Path) -> None:
    missing = {FILES["F0_CHECKPOINT_URL"], FILES["BERT_CONFIG_URL"]}
    for relative in set(FILES.values()) - missing:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).symlink_to(model_dir / relative)
    engine = StyleTTS2Engine(tmp_path)
    problem = engine.capabilities().unavailable or ""
    assert all(name in problem for name in missing), problem
    with pytest.raises(FileNotFoundError) as refused:
        engine.load()
    assert all(name in str(refused.value) for name in missing)

    absent = StyleTTS2Engine(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in (absent.capabilities().unavailable or "")
    assert "VOICEFARM_STYLETTS2_MODEL_DIR" in (StyleTTS2Engine(None).capabilities().unavailable or "")


def test_checkpoints_that_pickle_more_than_tensors_load(model_dir: Path, tmp_path: Path) -> None:
    # The released checkpoints carry pickled objects that torch's default weights-only loader
    # refuses; here PL-BERT's (the smallest file) carries a path.
    plbert = FILES["BERT_CHECKPOINT_URL"]
    for relative in set(FILES.values()) - {plbert}:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).symlink_to(model_dir / relative)
    checkpoint = torch.load(model_dir / plbert)
    torch.save(checkpoint | {"log_dir": PurePosixPath("Checkpoint")}, tmp_path / plbert)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / plbert)

    engine = StyleTTS2Engine(tmp_path, device="cpu")
    engine.load()
    assert engine.capabilities().unavailable is None


def test_synthesize_a_sentence(engine: StyleTTS2Engine, reference: tuple[np.ndarray, int]) -> None:
    text = "Hello there, how are you?"
    audio = engine.synthesize(request(reference, text=text))
    assert audio.sample_rate == SAMPLE_RATE == 24_000
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert len(audio.samples) == piece_samples(engine, text)
    assert np.isfinite(audio.samples).all() and np.abs(audio.samples).max() <= 1.0
    assert np.sqrt(np.mean(audio.samples**2)) > 0.01


def test_the_network_is_never_touched(engine: StyleTTS2Engine, reference: tuple[np.ndarray, int]) -> None:
    # conftest shut the network before the package was imported: the engine was imported,
    # loaded and now synthesizes without it, and nothing even tried (nltk's downloader would
    # swallow its own failure, so trying is what is checked).
    engine.synthesize(request(reference, key="offline:1"))
    assert network_attempts == []

    with pytest.raises(OSError):
        socket.create_connection(("huggingface.co", 443))
    assert network_attempts, "the guard is live"
    network_attempts.clear()


def test_other_downloads_are_refused(engine: StyleTTS2Engine) -> None:
    # The default voice the package clones when given none: not a model file, never fetched.
    package, _ = engine._loaded()
    with pytest.raises(RuntimeError, match="never downloads"):
        engine._serve_locally(package)(package.DEFAULT_TARGET_VOICE_URL)
    assert engine._serve_locally(package)(package.F0_CHECKPOINT_URL) == engine.model_dir / FILES["F0_CHECKPOINT_URL"]


def test_options_and_speed_pass_through(engine: StyleTTS2Engine, reference: tuple[np.ndarray, int]) -> None:
    options = {"alpha": 0.1, "beta": 0.9, "diffusion_steps": 3, "embedding_scale": 2.0}
    text = "Faster, please."
    fast = engine.synthesize(request(reference, text=text, speed=2.0, options=options))
    # Speed divides the predicted durations: 2 frames a token become 1.
    assert len(fast.samples) == piece_samples(engine, text, frames_per_token=FRAMES_PER_TOKEN // 2)
    assert np.isfinite(fast.samples).all()


def test_style_is_computed_once_per_reference_key(engine: StyleTTS2Engine, reference: tuple[np.ndarray, int]) -> None:
    before = engine.styles_computed
    engine.synthesize(request(reference, text="One.", key="voice-once:1"))
    engine.synthesize(request(reference, text="A second job.", key="voice-once:1"))
    assert engine.styles_computed == before + 1
    engine.synthesize(request((voiced_signal(f0=220.0, seed=1), 16_000), text="Two.", key="voice-once-b:1"))
    assert engine.styles_computed == before + 2


def test_style_store_spares_a_fresh_engine(
    engine: StyleTTS2Engine, store: DictStore, model_dir: Path, reference: tuple[np.ndarray, int]
) -> None:
    key = "voices/v1/latents/styletts2-x.bin"  # the caller's key, used as it is
    engine.synthesize(request(reference, text="Remember me.", key=key))
    assert key in store.data

    fresh = StyleTTS2Engine(model_dir, device="cpu", style_store=store, style_cache_size=1)
    fresh.load()
    audio = fresh.synthesize(request(reference, text="Remember me.", key=key))
    assert fresh.styles_computed == 0
    assert np.isfinite(audio.samples).all()
    assert torch.equal(fresh._style(request(reference, key=key)), engine._style(request(reference, key=key)))

    # Bounded: with room for one voice, a second pushes the first out, and it comes back from
    # the store rather than being computed again.
    fresh.synthesize(request(reference, text="Other.", key="voices/v2/latents/styletts2-x.bin"))
    assert fresh.styles_computed == 1 and len(fresh._cache) == 1
    fresh.synthesize(request(reference, text="Remember me.", key=key))
    assert fresh.styles_computed == 1


def test_bf16_autocast_holds(engine: StyleTTS2Engine, model_dir: Path, reference: tuple[np.ndarray, int]) -> None:
    # The CUDA path, on the CPU's autocast: PL-BERT runs in bf16, the decoder, diffusion and
    # LSTMs in fp32, and the wav comes out fp32 and close to the fp32 engine's.
    bf16 = StyleTTS2Engine(model_dir, device="cpu", bf16=True)
    bf16.load()
    dtypes: list[torch.dtype] = []
    bf16._loaded()[1].model.bert.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))

    text = "Hello there, how are you?"
    torch.manual_seed(0)
    low = bf16.synthesize(request(reference, text=text, key="precision:1"))
    torch.manual_seed(0)
    full = engine.synthesize(request(reference, text=text, key="precision:1"))
    assert dtypes == [torch.bfloat16]
    assert low.samples.dtype == np.float32 and np.isfinite(low.samples).all()
    assert len(low.samples) == len(full.samples) == piece_samples(engine, text)
    assert np.linalg.norm(low.samples - full.samples) / np.linalg.norm(full.samples) < 0.02


def test_long_text_is_split_and_joined(
    engine: StyleTTS2Engine, reference: tuple[np.ndarray, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The package's per-inference limit (420 characters, for PL-BERT's 512 positions), made
    # small so that splitting costs seconds here.
    limit = 40
    monkeypatch.setattr(engine._loaded()[0], "SINGLE_INFERENCE_MAX_LEN", limit)
    text = "The first sentence is here. And a second one follows, and it runs on past the limit."
    pieces = split_text(text, limit, pack=False)
    assert len(pieces) == 3  # each sentence its own piece, the long one wrapped
    audio = engine.synthesize(request(reference, text=text))
    expected = sum(piece_samples(engine, piece) for piece in pieces) - CROSSFADE * (len(pieces) - 1)
    assert len(audio.samples) == expected


def test_stream_hands_over_each_sentence_of_the_same_audio(
    engine: StyleTTS2Engine, reference: tuple[np.ndarray, int]
) -> None:
    import torch

    text = "The first sentence is here. And a second one follows. Then a third."
    torch.manual_seed(0)
    chunks = list(engine.stream(request(reference, text=text)))
    # A sentence each, less the few milliseconds held back to fade into the next; then the last few.
    assert [len(c.samples) for c in chunks][-1] == CROSSFADE and len(chunks) == 4
    first = piece_samples(engine, "The first sentence is here.")
    assert len(chunks[0].samples) == first - CROSSFADE
    torch.manual_seed(0)
    whole = engine.synthesize(request(reference, text=text))
    np.testing.assert_array_equal(np.concatenate([c.samples for c in chunks]), whole.samples)


def test_unsupported_language_and_missing_reference(engine: StyleTTS2Engine, reference: tuple[np.ndarray, int]) -> None:
    with pytest.raises(ValueError, match="de"):
        engine.synthesize(
            SynthesisRequest(text="Hallo", voice="v", language="de", reference=reference, reference_key="k")
        )
    with pytest.raises(ValueError, match="no voice 'v': clone one or use a built-in one"):
        engine.synthesize(SynthesisRequest(text="Hello", voice="v", language="en"))
    with pytest.raises(ValueError, match="empty"):
        engine.synthesize(request(reference, text="   "))
