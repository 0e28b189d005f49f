"""StyleTTS 2 (the `styletts2` package, LibriTTS model): English speech in a cloned voice's style.

Installed only in the StyleTTS2 worker's environment (workers/styletts2/.venv); torch and
styletts2 are imported in `load()` only, so the worker reads `capabilities()` and beats before loading.
The LibriTTS model has no named voices, so every voice is cloned: a voice's style vector is
computed once per `reference_key` from its reference sample and kept like XTTS's latents, in
a bounded in-process LRU and, when given, a persistent store shared by all workers.

Nothing here touches the network, though the package would: it downloads its weights through
`cached_path` when constructed (the F0 model whatever the config says) and calls
`nltk.download` when imported. `load()` serves each of the package's URLs from the model
directory and refuses any other, stubs nltk's downloader for the import, and tokenises
without the Punkt data nltk would fetch.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import tempfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile as sf
from voicefarm_torchkit import BytesStore, VoiceCache, autocast, autocast_device, keep_fp32, pick_device

from voicefarm.engines.base import Audio, Capabilities, SynthesisRequest, Voice, joined
from voicefarm.engines.text import crossfaded, split_text
from voicefarm.settings import Settings
from voicefarm.store.objects import LatentsStore
from voicefarm_styletts2.settings import StyleTTS2Settings

if TYPE_CHECKING:
    import torch
    from styletts2.tts import StyleTTS2

log = logging.getLogger(__name__)

VOICES_DIR = "voices"  # optional built-in voices: <model dir>/voices/<name>.wav reference samples
LANGUAGES = frozenset({"en"})  # LibriTTS is English, and the package phonemizes en-us only
SAMPLE_RATE = 24_000  # the decoder's output rate, and the rate style vectors are computed at
# The package's download URLs (constants of styletts2.tts), each served from this file of the
# model directory. The layout is upstream's: the LibriTTS model repository's Models/ beside
# the StyleTTS2 code repository's Utils/.
FILES: dict[str, str] = {
    "LIBRI_TTS_CHECKPOINT_URL": "Models/LibriTTS/epochs_2nd_00020.pth",
    "LIBRI_TTS_CONFIG_URL": "Models/LibriTTS/config.yml",
    "ASR_CHECKPOINT_URL": "Utils/ASR/epoch_00080.pth",
    "ASR_CONFIG_URL": "Utils/ASR/config.yml",
    "F0_CHECKPOINT_URL": "Utils/JDC/bst.t7",
    "BERT_CHECKPOINT_URL": "Utils/PLBERT/step_1000000.t7",
    "BERT_CONFIG_URL": "Utils/PLBERT/config.yml",
}
CHECKPOINT = FILES["LIBRI_TTS_CHECKPOINT_URL"]
CONFIG = FILES["LIBRI_TTS_CONFIG_URL"]
# Options a request may set, with the package's defaults (their types are the options' types).
INFERENCE_OPTIONS: dict[str, float | int] = {"alpha": 0.3, "beta": 0.7, "diffusion_steps": 5, "embedding_scale": 1.0}
END_PULSE_SAMPLES = 50  # the package trims this from every output: the decoder ends on a click


@contextlib.contextmanager
def _replaced(owner: object, name: str, value: object) -> Iterator[None]:
    """`owner.name` is `value` inside the block and what it was after."""
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


def _import_package() -> ModuleType:
    """Import styletts2.tts, whose import calls nltk.download('punkt'): a network round trip
    even when the data is present (nltk checks its index), and data this module does not use."""
    import nltk

    with _replaced(nltk, "download", lambda *args, **kwargs: True):
        from styletts2 import tts
    return tts


def word_tokenize(text: str) -> list[str]:
    """nltk.word_tokenize with an untrained Punkt splitting sentences.

    nltk's own loads its trained English Punkt model, data that must be downloaded. That model
    adds knowledge of English abbreviations; the text here is gruut's IPA, which has none
    (gruut writes pauses as | and ‖, not periods), so the tokens come out the same.
    """
    from nltk.tokenize import NLTKWordTokenizer, PunktSentenceTokenizer

    words = NLTKWordTokenizer()
    return [token for sentence in PunktSentenceTokenizer().tokenize(text) for token in words.tokenize(sentence)]


def _shift_right(x: torch.Tensor) -> torch.Tensor:
    """Delay frames by one, repeating the first: how the HiFi-GAN decoder was trained."""
    import torch

    return torch.cat([x[..., :1], x[..., :-1]], dim=-1)


def _serialize_style(style: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, style.cpu().numpy(), allow_pickle=False)
    return buffer.getvalue()


class StyleTTS2Engine:
    """StyleTTS2 engine; `model_dir` holds the files of FILES, laid out as upstream."""

    name = "styletts2"

    def __init__(
        self,
        model_dir: Path | None,
        device: str | None = None,
        style_cache_size: int = 64,
        style_store: BytesStore | None = None,
        *,
        bf16: bool | None = None,
    ) -> None:
        """`device` None picks CUDA when present; `bf16` None means bf16 autocast on CUDA only."""
        self.model_dir = Path(model_dir) if model_dir is not None else None
        self._device = device
        self._bf16 = bf16
        self._cache: VoiceCache[torch.Tensor] = VoiceCache(
            style_cache_size, style_store, _serialize_style, self._deserialize_style, "styletts2 style"
        )
        self._model: tuple[ModuleType, StyleTTS2] | None = None  # styletts2.tts and its model, once loaded
        self._model_version: str | None = None
        self._autocast_device: str | None = None  # set by load(): where bf16 autocast applies

    @property
    def styles_computed(self) -> int:
        """How many times a style vector was computed, not found cached."""
        return self._cache.computed

    # --- without torch -------------------------------------------------------------------

    def _missing(self) -> list[str]:
        assert self.model_dir is not None
        return [path for path in FILES.values() if not (self.model_dir / path).is_file()]

    def _problem(self) -> str | None:
        """Why the model cannot be loaded, naming what is missing; None when it can."""
        if self.model_dir is None:
            return "StyleTTS2 model directory is not configured (VOICEFARM_STYLETTS2_MODEL_DIR)"
        if not self.model_dir.is_dir():
            return f"StyleTTS2 model directory {self.model_dir} does not exist"
        if missing := self._missing():
            return f"StyleTTS2 model directory {self.model_dir} lacks {', '.join(missing)}"
        return None

    def _version(self) -> str:
        # The configs' digest plus each checkpoint's size and mtime: cheap to read, and new
        # weights change them (hashing hundreds of MB of weights would not be cheap).
        assert self.model_dir is not None
        digest = hashlib.sha256()
        for path in sorted(FILES.values()):
            file = self.model_dir / path
            if path.endswith(".yml"):
                digest.update(file.read_bytes())
            else:
                stat = file.stat()
                digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        return f"styletts2-libritts-{digest.hexdigest()[:12]}"

    def _device_name(self) -> str:
        if self._model is not None:
            return self._model[1].device
        # Before load, guess from the driver instead of importing torch.
        return self._device or ("cuda" if Path("/proc/driver/nvidia/version").exists() else "cpu")

    def capabilities(self) -> Capabilities:
        problem = self._problem()
        return Capabilities(
            languages=LANGUAGES,
            voices=() if problem else tuple(self._built_in().values()),
            cloning=True,
            device=self._device_name(),
            model_version="unknown" if problem else self._model_version or self._version(),
            unavailable=problem,
        )

    def _built_in(self) -> dict[str, Voice]:
        """Voices whose reference sample ships with the model: `styletts2-<name>`."""
        samples = sorted((self.model_dir / VOICES_DIR).glob("*.wav")) if self.model_dir else []
        return {
            f"styletts2-{path.stem}": Voice(
                f"styletts2-{path.stem}", "en-US", path.stem, SAMPLE_RATE, f"{path.stat().st_size}"
            )
            for path in samples
        }

    # --- with torch ----------------------------------------------------------------------

    def _serve_locally(self, package: ModuleType) -> Callable[[str], Path]:
        """A stand-in for the package's `cached_path`: its URLs map to the model directory."""
        model_dir = self.model_dir
        assert model_dir is not None
        files = {getattr(package, constant): path for constant, path in FILES.items()}

        def cached_path(url: str) -> Path:
            if url not in files:
                raise RuntimeError(f"styletts2 asked to download {url}; this worker never downloads")
            path = model_dir / files[url]
            if not path.is_file():
                raise FileNotFoundError(f"StyleTTS2 model directory {model_dir} lacks {files[url]} (for {url})")
            return path

        return cached_path

    def _package_config(self, directory: Path) -> Path:
        """config.yml, rewritten into `directory` so that the package asks for every Utils/ file
        by URL. Its own paths are relative to the working directory, which the package tries
        first; and its PL-BERT directory branch fails (it joins two str with `/`).
        F0_path stays: the package asks for its URL whatever it says."""
        import yaml

        assert self.model_dir is not None
        config = yaml.safe_load((self.model_dir / CONFIG).read_text())
        config |= {"ASR_config": "", "ASR_path": "", "PLBERT_dir": ""}
        path = directory / "config.yml"
        path.write_text(yaml.safe_dump(config))
        return path

    def load(self) -> None:
        if self._model is not None:
            return
        if problem := self._problem():
            raise FileNotFoundError(problem)
        assert self.model_dir is not None
        import torch

        device = pick_device(self._device, "StyleTTS2")

        package = _import_package()
        printed = io.StringIO()  # the package prints as it loads ("Loading default model...")
        with (
            tempfile.TemporaryDirectory() as scratch,
            _replaced(package, "cached_path", self._serve_locally(package)),
            # The released checkpoints pickle more than tensors, which torch >= 2.6 refuses by
            # default (StyleTTS2 issues #348, #361). They are the operator's files, trusted as code is.
            _replaced(torch, "load", partial(torch.load, weights_only=False)),
            contextlib.redirect_stdout(printed),
        ):
            tts = package.StyleTTS2(str(self.model_dir / CHECKPOINT), str(self._package_config(Path(scratch))))
        log.debug("styletts2 said while loading:\n%s", printed.getvalue())
        # The package chose its own device (CUDA whenever there is one).
        tts.device = str(device)
        for module in tts.model.values():
            module.to(device)

        self._autocast_device = autocast_device(device, self._bf16)
        if self._autocast_device is not None:
            # Where bf16 does not hold: the style diffusion's noise schedule goes down to 1e-4;
            # the decoder's harmonic source integrates phase over every sample; an LSTM carries
            # its rounding from step to step (and oneDNN has no bf16 LSTM on CPUs without
            # AVX-512). PL-BERT, the convolutions and the projections run in bf16.
            lstms = [lstm for net in tts.model.values() for lstm in net.modules() if isinstance(lstm, torch.nn.LSTM)]
            for module in (tts.model.decoder, tts.model.diffusion.diffusion.net, *lstms):
                keep_fp32(module, self._autocast_device)
        self._model_version = self._version()
        self._model = package, tts
        log.info("styletts2: loaded %s on %s", self._model_version, device)

    def _loaded(self) -> tuple[ModuleType, StyleTTS2]:
        if self._model is None:
            raise RuntimeError("StyleTTS2Engine.load() must be called before synthesize()")
        return self._model

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        return autocast(self._autocast_device)

    def _compute_style(self, samples: np.ndarray, sample_rate: int) -> torch.Tensor:
        """StyleTTS2.compute_style for one in-memory reference (the package's reads a file).

        In fp32: it runs once per voice, and every job in that voice reuses the vector.
        """
        import librosa
        import torch

        package, tts = self._loaded()
        mono = np.asarray(samples, dtype=np.float32)
        if mono.ndim == 2:  # (frames, channels), as soundfile reads it
            mono = mono.mean(axis=1)
        if sample_rate != SAMPLE_RATE:
            mono = librosa.resample(mono, orig_sr=sample_rate, target_sr=SAMPLE_RATE)
        trimmed, _ = librosa.effects.trim(mono, top_db=30)
        mel = package.preprocess(trimmed).to(tts.device).unsqueeze(1)
        with torch.no_grad():
            return torch.cat([tts.model.style_encoder(mel), tts.model.predictor_encoder(mel)], dim=1)

    def _deserialize_style(self, data: bytes) -> torch.Tensor:
        import torch

        return torch.from_numpy(np.load(io.BytesIO(data), allow_pickle=False)).to(self._loaded()[1].device)

    def _style(self, request: SynthesisRequest) -> torch.Tensor:
        """The request's voice style: from the LRU, else the store, else computed once."""
        if request.reference is not None:
            reference = request.reference
            return self._cache.get(request.reference_key, lambda: self._compute_style(*reference))
        if request.voice not in self._built_in():
            raise ValueError(f"StyleTTS2 has no voice {request.voice!r}: clone one or use a built-in one")
        path = self.model_dir / VOICES_DIR / f"{request.voice.removeprefix('styletts2-')}.wav"
        # Kept in this process only: a built-in voice's sample is always at hand.
        return self._cache.get(
            f"built-in/{request.voice}/{self._model_version}",
            lambda: self._compute_style(*sf.read(path, dtype="float32")),
            persist=False,
        )

    def _tokens(self, text: str) -> list[int]:
        """The package's text front end: gruut's IPA, nltk's word tokens joined by spaces, the
        symbols' ids, and the pad id in front."""
        from styletts2.text_utils import dicts

        phonemes = self._loaded()[1].phoneme_converter.phonemize(text.strip().replace('"', ""))
        symbols = " ".join(word_tokenize(phonemes))
        # TextCleaner drops symbols it has no id for (gruut's pause marks), printing the whole
        # text each time; the same lookup, quietly.
        return [0] + [dicts[symbol] for symbol in symbols if symbol in dicts]

    def _speak(self, text: str, style: torch.Tensor, speed: float, options: dict[str, Any]) -> np.ndarray:
        """StyleTTS2.inference for one piece, with speed, under bf16 autocast when enabled.

        The package's inference has no speed; the original StyleTTS 2 demos divide the
        predicted durations by it, as here.
        """
        import torch

        package, tts = self._loaded()
        model = tts.model
        style_dim = tts.model_params.style_dim
        tokens = torch.tensor([self._tokens(text)], device=tts.device)
        lengths = torch.tensor([tokens.shape[-1]], device=tts.device)
        text_mask = package.length_to_mask(lengths)
        with torch.no_grad(), self._autocast():
            t_en = model.text_encoder(tokens, lengths, text_mask)
            bert_dur = model.bert(tokens, attention_mask=(~text_mask).int())
            d_en = model.bert_encoder(bert_dur).transpose(-1, -2)

            s_pred = tts.sampler(
                noise=torch.randn((1, 1, 2 * style_dim), device=tts.device),
                embedding=bert_dur,
                embedding_scale=options["embedding_scale"],
                features=style,  # the reference voice's style conditions the diffusion
                num_steps=options["diffusion_steps"],
            ).squeeze(1)
            ref = options["alpha"] * s_pred[:, :style_dim] + (1 - options["alpha"]) * style[:, :style_dim]
            s = options["beta"] * s_pred[:, style_dim:] + (1 - options["beta"]) * style[:, style_dim:]

            d = model.predictor.text_encoder(d_en, s, lengths, text_mask)
            x, _ = model.predictor.lstm(d)
            duration = torch.sigmoid(model.predictor.duration_proj(x).float()).sum(dim=-1) / speed
            frames = torch.round(duration.squeeze(0)).clamp(min=1).long()
            # Each token's features, repeated for its frames: the package's product with a
            # one-hot alignment matrix, without the matrix.
            en = torch.repeat_interleave(d.transpose(-1, -2), frames, dim=-1)
            asr = torch.repeat_interleave(t_en, frames, dim=-1)
            if tts.model_params.decoder.type == "hifigan":
                en, asr = _shift_right(en), _shift_right(asr)
            f0, noise = model.predictor.F0Ntrain(en, s)
            out = model.decoder(asr, f0, noise, ref)
        return out.squeeze().cpu().numpy()[:-END_PULSE_SAMPLES]

    def _pieces(self, request: SynthesisRequest) -> Iterator[np.ndarray]:
        package, _ = self._loaded()
        # Sentence by sentence, for a stream's first audio; within the package's limit (PL-BERT
        # reads at most 512 tokens).
        pieces = split_text(request.text, package.SINGLE_INFERENCE_MAX_LEN, pack=False)
        if not pieces:
            raise ValueError("nothing to synthesize: the text is empty")
        style = self._style(request)
        options = {
            name: type(default)(request.options.get(name, default)) for name, default in INFERENCE_OPTIONS.items()
        }
        for piece in pieces:
            yield self._speak(piece, style, request.speed, options)

    def stream(self, request: SynthesisRequest) -> Iterator[Audio]:
        """One sentence at a time, crossfaded into the next as `synthesize` joins them."""
        language = request.language.split("-")[0].lower()
        if language not in LANGUAGES:
            raise ValueError(f"StyleTTS2 does not speak {request.language!r}; it speaks English only")
        for samples in crossfaded(self._pieces(request), SAMPLE_RATE):
            yield Audio(np.clip(samples, -1.0, 1.0), SAMPLE_RATE)

    def synthesize(self, request: SynthesisRequest) -> Audio:
        return joined(self.stream(request))


def from_settings(settings: Settings) -> StyleTTS2Engine:
    """The engine as VOICEFARM_STYLETTS2_* configures it; `settings` is the core's, for the protocol."""
    own = StyleTTS2Settings()
    return StyleTTS2Engine(
        own.model_dir, device=own.device, style_cache_size=own.style_cache_size, style_store=LatentsStore()
    )
