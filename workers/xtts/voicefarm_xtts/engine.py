"""XTTS v2 (coqui-tts): zero-shot voice cloning in 17 languages, on a GPU or the CPU.

Installed only in the XTTS worker's environment (workers/xtts/.venv); torch and coqui-tts
are imported in `load()` only, so the worker reads `capabilities()` and beats before loading.
A cloned voice's conditioning latents are computed once per `reference_key` and kept in a
bounded in-process LRU and, when given, a persistent latents store shared by all workers. The
caller's reference_key names the voice, its version, the engine and the model version: latents
belong to the weights that computed them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from voicefarm_torchkit import BytesStore, VoiceCache, autocast, autocast_device, keep_fp32, pick_device

from voicefarm.engines.base import Audio, Capabilities, SynthesisRequest, joined
from voicefarm.engines.text import crossfaded, split_text
from voicefarm.settings import Settings
from voicefarm.store.objects import LatentsStore
from voicefarm_xtts.settings import XttsSettings

if TYPE_CHECKING:
    import torch
    from TTS.tts.models.xtts import Xtts

    from voicefarm_xtts.batcher import Batcher
    from voicefarm_xtts.batching import Sampling

log = logging.getLogger(__name__)

# XTTS v2's languages as primary subtags; coqui names Chinese "zh-cn" and maps "zh" to it.
LANGUAGES = frozenset(
    {"en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "zh", "hu", "ko", "ja", "hi"}
)
REQUIRED_FILES = ("config.json", "model.pth", "vocab.json")
SAMPLE_RATE = 24_000  # the HiFi-GAN decoder's output rate
OVERLAP_SAMPLES = 1024  # inference_stream's overlap_wav_len: each chunk's crossfade with the next
REFERENCE_RATE = 22_050  # coqui computes cloning latents at this rate
# Options a request may set, with their types; anything else in request.options is not ours.
INFERENCE_OPTIONS: dict[str, type] = {
    "temperature": float,
    "length_penalty": float,
    "repetition_penalty": float,
    "top_k": int,
    "top_p": float,
}

Latents = tuple["torch.Tensor", "torch.Tensor"]  # (gpt_cond_latent, speaker_embedding)


def _serialize_latents(latents: Latents) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save({"gpt_cond_latent": latents[0].cpu(), "speaker_embedding": latents[1].cpu()}, buffer)
    return buffer.getvalue()


class XttsEngine:
    """XTTS v2 engine; `model_dir` holds config.json, model.pth and vocab.json."""

    name = "xtts"

    def __init__(
        self,
        model_dir: Path | None,
        device: str | None = None,
        latents_cache_size: int = 64,
        latents_store: BytesStore | None = None,
        *,
        bf16: bool | None = None,
        stream_chunk_size: int = 20,
        batch_size: int = 1,
    ) -> None:
        """`device` None picks CUDA when present; `bf16` None means bf16 autocast on CUDA only;
        `stream_chunk_size` GPT codes make one streamed chunk (coqui's default: 20, about a
        quarter of a second of speech), fewer for an earlier first chunk at more decoder calls.
        `batch_size` above 1 decodes the GPT steps of that many texts, from as many threads,
        together (voicefarm_xtts.batcher); 1 runs coqui's own `inference_stream`."""
        if batch_size < 1:
            raise ValueError(f"batch_size is at least 1, not {batch_size}")
        self.model_dir = Path(model_dir) if model_dir is not None else None
        self.stream_chunk_size = stream_chunk_size
        self.batch_size = batch_size
        self._device = device
        self._bf16 = bf16
        self._cache: VoiceCache[Latents] = VoiceCache(
            latents_cache_size, latents_store, _serialize_latents, self._deserialize_latents, "xtts latents"
        )
        self._model: Xtts | None = None
        self._model_version: str | None = None
        self._autocast_device: str | None = None  # set by load(): where bf16 autocast applies
        self._batcher: Batcher | None = None  # set by load() when batch_size > 1

    @property
    def latents_computed(self) -> int:
        """How many times latents were computed, not found cached."""
        return self._cache.computed

    # --- without torch -------------------------------------------------------------------

    def _problem(self) -> str | None:
        """Why the checkpoint cannot be loaded, naming what is missing; None when it can."""
        if self.model_dir is None:
            return "XTTS model directory is not configured (VOICEFARM_XTTS_MODEL_DIR)"
        if not self.model_dir.is_dir():
            return f"XTTS model directory {self.model_dir} does not exist"
        missing = [name for name in REQUIRED_FILES if not (self.model_dir / name).is_file()]
        if missing:
            return f"XTTS model directory {self.model_dir} lacks {', '.join(missing)}"
        return None

    def _version(self) -> str:
        # Config and vocabulary digest plus the weights' size and mtime: cheap to read, and
        # a new checkpoint changes them (hashing gigabytes of weights would not be cheap).
        assert self.model_dir is not None
        digest = hashlib.sha256()
        for name in ("config.json", "vocab.json"):
            digest.update((self.model_dir / name).read_bytes())
        stat = (self.model_dir / "model.pth").stat()
        digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
        return f"xtts-v2-{digest.hexdigest()[:12]}"

    def _device_name(self) -> str:
        if self._model is not None:
            return str(self._model.device)
        # Before load, guess from the driver instead of importing torch.
        return self._device or ("cuda" if Path("/proc/driver/nvidia/version").exists() else "cpu")

    def capabilities(self) -> Capabilities:
        problem = self._problem()
        return Capabilities(
            languages=LANGUAGES,
            voices=(),
            cloning=True,
            device=self._device_name(),
            model_version="unknown" if problem else self._model_version or self._version(),
            unavailable=problem,
            concurrency=self.batch_size,
        )

    # --- with torch ----------------------------------------------------------------------

    def load(self) -> None:
        if self._model is not None:
            return
        if problem := self._problem():
            raise FileNotFoundError(problem)
        assert self.model_dir is not None
        from TTS.tts.configs.xtts_config import XttsConfig
        from TTS.tts.models.xtts import Xtts

        device = pick_device(self._device, "XTTS")

        config = XttsConfig()
        config.load_json(str(self.model_dir / "config.json"))
        model = Xtts(config)
        # A local checkpoint only: nothing here ever downloads.
        model.load_checkpoint(config, checkpoint_dir=str(self.model_dir), use_deepspeed=False, eval=True)
        model.to(device)

        self._autocast_device = autocast_device(device, self._bf16)
        if self._autocast_device is not None:
            # Xtts.inference_stream calls the HiFi-GAN decoder inside the same block as the GPT; in
            # bf16 it would decode the wav in bf16 as well.
            keep_fp32(model.hifigan_decoder, self._autocast_device)
        self._model_version = self._version()
        if self.batch_size > 1:
            from voicefarm_xtts.batcher import Batcher
            from voicefarm_xtts.batching import Decoder

            self._batcher = Batcher(Decoder(model.gpt), self.batch_size, self._autocast)
        self._model = model
        log.info("xtts: loaded %s on %s", self._model_version, device)

    def _loaded(self) -> Xtts:
        if self._model is None:
            raise RuntimeError("XttsEngine.load() must be called before synthesize()")
        return self._model

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        return autocast(self._autocast_device)

    def _compute_latents(self, samples: np.ndarray, sample_rate: int) -> Latents:
        """Xtts.get_conditioning_latents for one in-memory reference (coqui's takes paths)."""
        import torch
        import torchaudio

        model = self._loaded()
        config = model.config
        mono = np.asarray(samples, dtype=np.float32)
        if mono.ndim == 2:  # (frames, channels), as soundfile reads it
            mono = mono.mean(axis=1)
        audio = torch.from_numpy(np.ascontiguousarray(mono)).unsqueeze(0)
        if sample_rate != REFERENCE_RATE:
            audio = torchaudio.functional.resample(audio, sample_rate, REFERENCE_RATE)
        audio = audio[:, : REFERENCE_RATE * config.max_ref_len].clamp(-1.0, 1.0).to(model.device)
        if config.sound_norm_refs:
            audio = audio / audio.abs().max() * 0.75
        speaker_embedding = model.get_speaker_embedding(audio, REFERENCE_RATE)
        gpt_cond_latent = model.get_gpt_cond_latents(
            audio, REFERENCE_RATE, length=config.gpt_cond_len, chunk_length=config.gpt_cond_chunk_len
        )
        return gpt_cond_latent, speaker_embedding

    def _deserialize_latents(self, data: bytes) -> Latents:
        import torch

        saved = torch.load(io.BytesIO(data), map_location=self._loaded().device, weights_only=True)
        return saved["gpt_cond_latent"], saved["speaker_embedding"]

    def _latents(self, request: SynthesisRequest) -> Latents:
        """The request's voice latents: from the LRU, else the store, else computed once."""
        if request.reference is None:
            raise ValueError("XTTS clones voices: the request needs a reference sample")
        reference = request.reference
        return self._cache.get(request.reference_key, lambda: self._compute_latents(*reference))

    def stream(self, request: SynthesisRequest) -> Iterator[Audio]:
        """coqui's `inference_stream`, one text piece after another: a chunk of audio every
        `stream_chunk_size` GPT codes, the pieces crossfaded as `synthesize` joins them."""
        language = request.language.split("-")[0].lower()
        if language not in LANGUAGES:
            raise ValueError(f"XTTS does not speak {request.language!r}; it speaks {', '.join(sorted(LANGUAGES))}")
        for samples in crossfaded(self._chunks(request, language), SAMPLE_RATE):
            yield Audio(np.clip(samples, -1.0, 1.0), SAMPLE_RATE)

    def _chunks(self, request: SynthesisRequest, language: str) -> Iterator[np.ndarray]:
        """The streamed chunks of each text piece in turn (coqui overlaps a piece's own chunks)."""
        model = self._loaded()
        gpt_cond_latent, speaker_embedding = self._latents(request)
        settings = {name: kind(model.config[name]) for name, kind in INFERENCE_OPTIONS.items()}
        settings |= {
            name: kind(request.options[name]) for name, kind in INFERENCE_OPTIONS.items() if name in request.options
        }
        pieces = split_text(request.text, model.tokenizer.char_limits[language])
        if not pieces:
            raise ValueError("nothing to synthesize: the text is empty")
        for piece in pieces:
            if self._batcher is not None:
                latents = (gpt_cond_latent, speaker_embedding)
                yield from self._batched_chunks(self._batcher, piece, language, latents, request.speed, settings)
                continue
            # Autocast stays on between chunks, while the worker publishes one: it runs no torch.
            with self._autocast():
                for chunk in model.inference_stream(
                    piece,
                    language,
                    gpt_cond_latent,
                    speaker_embedding,
                    stream_chunk_size=self.stream_chunk_size,
                    speed=request.speed,
                    **settings,
                ):
                    yield chunk.float().cpu().numpy()

    def sampling(self, piece: str, settings: dict[str, float | int]) -> Sampling:
        """How the batched GPT samples this text piece's codes: the request's settings."""
        from voicefarm_xtts.batching import Sampling

        return Sampling(**{name: value for name, value in settings.items() if name != "length_penalty"})

    def _batched_chunks(
        self,
        batcher: Batcher,
        piece: str,
        language: str,
        latents: Latents,
        speed: float,
        settings: dict[str, float | int],
    ) -> Iterator[np.ndarray]:
        """`inference_stream`'s chunks, with the GPT's steps shared with other threads' texts:
        the same latents in, the same vocoder calls and overlaps out."""
        import torch
        import torch.nn.functional as F

        model = self._loaded()
        gpt_cond_latent, speaker_embedding = latents
        tokens = torch.IntTensor(model.tokenizer.encode(piece.strip().lower(), lang=language)).unsqueeze(0)
        seq = batcher.decoder.sequence(gpt_cond_latent, tokens.to(model.device), self.sampling(piece, settings))
        length_scale = 1.0 / max(speed, 0.05)
        made: list[torch.Tensor] = []  # the GPT latents so far, one per code
        prev: torch.Tensor | None = None
        overlap: torch.Tensor | None = None

        def audio(final: bool) -> np.ndarray:
            nonlocal prev, overlap
            gpt_latents = torch.stack(made)[None, :]
            if length_scale != 1.0:
                gpt_latents = F.interpolate(
                    gpt_latents.transpose(1, 2), scale_factor=length_scale, mode="linear"
                ).transpose(1, 2)
            with torch.inference_mode(), self._autocast():
                wav = model.hifigan_decoder(gpt_latents, g=speaker_embedding.to(model.device))
                chunk, prev, overlap = model.handle_chunks(
                    wav.squeeze(), prev, overlap, OVERLAP_SAMPLES, is_final=final
                )
            return chunk.float().cpu().numpy()

        with contextlib.closing(batcher.codes(seq)) as codes:
            for _code, latent in codes:
                made.append(latent)
                if len(made) % self.stream_chunk_size == 0:
                    yield audio(final=False)
        yield audio(final=True)

    def synthesize(self, request: SynthesisRequest) -> Audio:
        return joined(self.stream(request))


def from_settings(settings: Settings) -> XttsEngine:
    """The engine as VOICEFARM_XTTS_* configures it; `settings` is the core's, for the protocol."""
    own = XttsSettings()
    return XttsEngine(
        own.model_dir,
        device=own.device,
        latents_cache_size=own.latents_cache_size,
        latents_store=LatentsStore(),
        stream_chunk_size=own.stream_chunk_size,
        batch_size=own.batch_size,
    )
