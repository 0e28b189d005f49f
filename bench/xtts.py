"""`make bench`, XTTS part: XTTS v2's real-time factor and streaming time to first chunk.

Run with workers/xtts/.venv's interpreter: `python -m bench.xtts` from the repo root.
The checkpoint has XTTS v2's real dimensions and random weights (the released weights are
on a hub this project cannot reach): per generated audio code it costs what the real model
costs, and since random weights never choose the stop code every phrase generates exactly
MAX_GEN_TOKENS codes. On CUDA, fp32, TF32 and bf16 autocast are compared, with ratios
against fp32 measured in the same run; on CPU, fp32 is measured, and bf16 autocast too
where the CPU has bf16 instructions (elsewhere it is emulated and says nothing useful).
"""

from __future__ import annotations

import gc
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from voicefarm_xtts.engine import INFERENCE_OPTIONS, REFERENCE_RATE, REQUIRED_FILES, SAMPLE_RATE, XttsEngine

from voicefarm.engines.base import SynthesisRequest
from voicefarm.fleet.selftest import voiced_signal

# Before coqui or transformers are imported (by the checkpoint builder or XttsEngine.load):
# any hub lookup fails instead of hanging.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# The checkpoint builder is a script beside the XTTS engine's tests, not part of its package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workers" / "xtts" / "tests"))

console = Console(highlight=False, soft_wrap=True)  # `make` logs: no wrapping at 80 columns

# Codes per phrase: about 2.8 s of audio, a short sentence's worth, three streamed chunks;
# small enough that a CPU run (fp32 only, four phrases with the warm-up) takes minutes.
MAX_GEN_TOKENS = 60
STREAM_CHUNK_TOKENS = 20  # coqui's default stream_chunk_size
REFERENCE_SECONDS = 6.0
LANGUAGE = "en"
PHRASES = [
    "Your order has shipped and will arrive on Tuesday.",
    "Please hold while we connect you to the next available agent.",
    "The meeting has been moved to three o'clock this afternoon.",
]
VOICE_KEY = "bench-voice"  # latents are computed once, as for a known voice in production


@dataclass(frozen=True)
class Mode:
    name: str
    bf16: bool  # the engine's bf16 autocast (GPT in bf16, HiFi-GAN decoder in fp32)
    tf32: bool  # TF32 matmuls and convolutions for what runs in fp32


@dataclass(frozen=True)
class Result:
    load_s: float
    latents_s: float
    audio_s: list[float]  # per phrase
    rtf: list[float]  # per phrase: synthesis wall / audio seconds
    ttfc_s: list[float]  # per phrase: streaming, until the first chunk is yielded
    chunk_s: list[float]  # per phrase: the first chunk's audio seconds


def checkpoint() -> Path:
    """The real-dims random checkpoint for MAX_GEN_TOKENS, built once and cached across runs."""
    from tiny_checkpoint import build_checkpoint

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "voicefarm-bench"
    target = cache / f"xtts-real-{MAX_GEN_TOKENS}"
    if all((target / name).is_file() for name in REQUIRED_FILES):
        console.print(f"checkpoint: {target} (cached)")
        return target
    # Built beside the target and renamed into place, so an interrupted build is never reused.
    partial = cache / f"{target.name}.partial-{os.getpid()}"
    started = time.perf_counter()
    build_checkpoint(partial, dims="real", max_gen_tokens=MAX_GEN_TOKENS)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    gc.collect()
    size = (target / "model.pth").stat().st_size / 1e9
    console.print(f"checkpoint: built {target} ({size:.2f} GB) in {time.perf_counter() - started:.0f} s")
    return target


def modes(device: str) -> list[Mode]:
    """What to compare here; the first is the baseline that the speed-ups divide."""
    if device == "cuda":
        return [
            Mode("fp32", bf16=False, tf32=False),
            Mode("tf32", bf16=False, tf32=True),
            Mode("bf16 autocast", bf16=True, tf32=True),
        ]
    fp32 = [Mode("cpu fp32", bf16=False, tf32=False)]
    if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return [*fp32, Mode("cpu bf16 autocast", bf16=True, tf32=False)]
    return fp32


def measure(model_dir: Path, device: str, mode: Mode) -> Result:
    """Load the engine in `mode`, warm it up, then time latents, whole phrases and first chunks."""
    sync: Callable[[], None] = torch.cuda.synchronize if device == "cuda" else lambda: None
    started = time.perf_counter()
    engine = XttsEngine(model_dir, device=device, latents_store=None, bf16=mode.bf16)
    engine.load()
    load_s = time.perf_counter() - started
    # After load(), which turns TF32 on for CUDA: the fp32 baseline must not use it.
    torch.backends.cuda.matmul.allow_tf32 = mode.tf32
    torch.backends.cudnn.allow_tf32 = mode.tf32
    reference = voiced_signal(REFERENCE_SECONDS, REFERENCE_RATE), REFERENCE_RATE

    def request(text: str) -> SynthesisRequest:
        return SynthesisRequest(text, VOICE_KEY, LANGUAGE, reference=reference, reference_key=VOICE_KEY)

    # The warm-up also computes and caches the voice's latents, so phrases below reuse them.
    engine.synthesize(request("Warm up."))

    # The engine computes latents outside autocast, so they are timed outside it here too.
    started = time.perf_counter()
    engine._compute_latents(*reference)
    sync()
    latents_s = time.perf_counter() - started

    audio_s: list[float] = []
    rtf: list[float] = []
    for text in PHRASES:
        started = time.perf_counter()
        audio = engine.synthesize(request(text))
        rtf.append((time.perf_counter() - started) / audio.duration)
        audio_s.append(audio.duration)

    # The engine does not stream; this is what coqui's streaming would give on the same model.
    model = engine._loaded()
    latents = engine._latents(request(PHRASES[0]))
    settings = {name: kind(model.config[name]) for name, kind in INFERENCE_OPTIONS.items()}
    ttfc_s: list[float] = []
    chunk_s: list[float] = []
    for text in PHRASES:
        with engine._autocast():
            started = time.perf_counter()
            stream = model.inference_stream(text, LANGUAGE, *latents, stream_chunk_size=STREAM_CHUNK_TOKENS, **settings)
            chunk = next(stream)
            sync()
            ttfc_s.append(time.perf_counter() - started)
            stream.close()
        chunk_s.append(len(chunk) / SAMPLE_RATE)

    del engine, model, latents
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    return Result(load_s, latents_s, audio_s, rtf, ttfc_s, chunk_s)


def seconds(values: list[float]) -> str:
    return " ".join(f"{v:.3f}" for v in values)


def spread(values: list[float]) -> str:
    # The best is reported beside the median: on a shared host, others' load only slows runs down.
    return f"median {statistics.median(values):.3f}, best {min(values):.3f}"


def main() -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name() if device == "cuda" else f"{os.cpu_count()} cores"
    console.print(
        f"XTTS v2, real dimensions, random weights; torch {torch.__version__}, device {device} ({name}), "
        f"{torch.get_num_threads()} CPU threads"
    )
    if device == "cpu":
        console.print("no GPU present: CPU numbers only; fp32 vs TF32 vs bf16 needs a CUDA machine")
    console.print(
        f"tokens bound: {MAX_GEN_TOKENS} audio codes per phrase; streaming chunk {STREAM_CHUNK_TOKENS} codes; "
        f"reference {REFERENCE_SECONDS:.0f} s synthetic voiced signal; {len(PHRASES)} phrases"
    )
    model_dir = checkpoint()
    load_before = os.getloadavg()[0]

    results: dict[str, Result] = {}
    for mode in modes(device):
        result = measure(model_dir, device, mode)
        results[mode.name] = result
        console.print(f"[bold]{mode.name}[/bold]: load {result.load_s:.1f} s, latents {result.latents_s:.3f} s")
        console.print(f"  audio s per phrase   {seconds(result.audio_s)}")
        console.print(f"  RTF per phrase       {seconds(result.rtf)}   ({spread(result.rtf)})")
        console.print(
            f"  first chunk s        {seconds(result.ttfc_s)}   ({spread(result.ttfc_s)}; "
            f"chunk audio {seconds(result.chunk_s)} s)"
        )

    base = next(iter(results.values()))
    base_rtf, base_ttfc = statistics.median(base.rtf), statistics.median(base.ttfc_s)
    console.print(f"\n{'mode':<18} {'RTF':>7} {'speed-up':>9} {'TTFC s':>8} {'speed-up':>9} {'latents s':>10}")
    for mode_name, result in results.items():
        rtf, ttfc = statistics.median(result.rtf), statistics.median(result.ttfc_s)
        console.print(
            f"{mode_name:<18} {rtf:>7.3f} {base_rtf / rtf:>8.2f}x {ttfc:>8.3f} {base_ttfc / ttfc:>8.2f}x "
            f"{result.latents_s:>10.3f}"
        )
    # Other processes on a shared host inflate and scatter the timings; this says how much.
    console.print(
        f"load average (1 min) before/after measuring: {load_before:.2f} / {os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} cores; above the core count, the numbers above are contended"
    )
    console.print(
        "RTF = synthesis wall / audio seconds (below 1 is faster than real time); TTFC = streaming "
        f"time to first chunk; speed-ups against {next(iter(results))} in this run, medians over phrases"
    )


if __name__ == "__main__":
    main()
