"""GPU report, StyleTTS2 part (issue 23): fp32 against bf16 autocast with TF32, at the released
LibriTTS model's sizes.

Run with the StyleTTS2 worker's interpreter from the repo root: `python -m bench.gpu_styletts2
--device cuda --work DIR --out FILE`; `--tiny --device cpu` is the same run on the tests' tiny
model, as a test. The weights are random (the released ones are on hosts this project cannot
reach): a random model of the released sizes does the same arithmetic per sentence as the
trained one, so it costs what the trained one costs, though it speaks noise. Each text is
synthesised from the same seed in both modes, so both draw the same diffusion and source noise
and the bf16 audio's SNR against fp32 measures precision alone.
"""

from __future__ import annotations

import gc
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import torch
from voicefarm_styletts2.engine import FILES, INFERENCE_OPTIONS, SAMPLE_RATE, VOICES_DIR, StyleTTS2Engine

from bench.gpu_measure import arguments, is_cuda, reset_peak, set_tf32, snr_db, summary, timed_stream, write
from bench.lengths import TEXTS
from voicefarm.engines.base import SynthesisRequest

# Before styletts2 and transformers are imported (by load() and by the model builder, which
# inherits the environment): a hub lookup on a host without a network fails at once, not hangs.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

ROOT = Path(__file__).resolve().parents[1]
# The builder is a script beside the engine's tests, not part of its package.
BUILDER = ROOT / "workers" / "styletts2" / "tests" / "tiny_model.py"
# The model's own voice: its style is computed once, in the warm-up, as for a known voice in
# production, so the timed syntheses do not include it.
VOICE = "styletts2-default"
WARM_UP = "Warm up."


def model_dir(work: Path, tiny: bool) -> Path:
    """The random model in `work`, built once: the tiny one and the released sizes side by side."""
    target = work / f"styletts2-{'tiny' if tiny else 'released'}"
    needed = [*FILES.values(), f"{VOICES_DIR}/default.wav"]
    if all((target / path).is_file() for path in needed):
        return target
    # Built beside the target and renamed into place, so an interrupted build is never reused.
    partial_dir = work / f"{target.name}.partial-{os.getpid()}"
    started = time.perf_counter()
    command = [sys.executable, str(BUILDER), str(partial_dir), *([] if tiny else ["--full"])]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)  # it prints only the directory
    shutil.rmtree(target, ignore_errors=True)  # an incomplete one
    partial_dir.rename(target)
    print(f"built {target} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return target


def chunks(engine: StyleTTS2Engine, text: str) -> Iterator[np.ndarray]:
    for audio in engine.stream(SynthesisRequest(text, VOICE, "en")):
        yield audio.samples


def measure(directory: Path, device: str, bf16: bool, texts: list[str]) -> tuple[dict, list[np.ndarray]]:
    """One mode's summary, and each text's audio for the SNR."""
    started = time.perf_counter()
    engine = StyleTTS2Engine(directory, device=device, bf16=bf16)
    engine.load()
    load_s = time.perf_counter() - started
    # After load(), which turns TF32 on for CUDA: the fp32 baseline must run without it.
    set_tf32(bf16)
    engine.synthesize(SynthesisRequest(WARM_UP, VOICE, "en"))
    reset_peak(device)
    first_s: list[float] = []
    total_s: list[float] = []
    audio_s: list[float] = []
    audios: list[np.ndarray] = []
    for n, text in enumerate(texts):
        torch.manual_seed(n)
        first, total, audio = timed_stream(device, partial(chunks, engine, text))
        first_s.append(first)
        total_s.append(total)
        audio_s.append(len(audio) / SAMPLE_RATE)
        audios.append(audio)
    result = summary(first_s, total_s, audio_s, device, load_s=round(load_s, 2))
    del engine
    gc.collect()
    if is_cuda(device):
        torch.cuda.empty_cache()
    return result, audios


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0])
    texts = TEXTS[: args.texts] if args.texts else TEXTS
    directory = model_dir(args.work, args.tiny)
    fp32, fp32_audio = measure(directory, args.device, False, texts)
    print(f"fp32: {fp32}", file=sys.stderr)
    bf16, bf16_audio = measure(directory, args.device, True, texts)
    snr = [snr_db(reference, other) for reference, other in zip(fp32_audio, bf16_audio, strict=True)]
    bf16["snr_db_vs_fp32"] = round(statistics.median(snr), 2)
    print(f"bf16: {bf16}", file=sys.stderr)
    write(
        args.out,
        {
            "engine": "styletts2",
            "device": torch.cuda.get_device_name(args.device) if is_cuda(args.device) else "cpu",
            "sizes": "tiny" if args.tiny else "released",
            "diffusion_steps": INFERENCE_OPTIONS["diffusion_steps"],
            "voice": VOICE,
            "fp32": fp32,
            "bf16": bf16,
        },
    )


if __name__ == "__main__":
    main()
