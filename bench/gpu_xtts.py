"""The GPU report's XTTS v2 part: fp32 against bf16 autocast with TF32, at the released sizes
(or the tests' tiny ones), random weights, each text at the length its speech takes.

Run in the XTTS environment from the repo root: `python -m bench.gpu_xtts --work DIR --out FILE`.
Writes real-time factors, first streamed chunk p50/p95 and peak GPU memory per mode; the SNR
of bf16's audio against fp32's for the same codes; and what a cloned voice's latents cost,
computed once and then from the cache.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from voicefarm_torchkit import autocast
from voicefarm_xtts.engine import REFERENCE_RATE, REQUIRED_FILES, SAMPLE_RATE

from bench.fixed_length import FixedLengthXtts, bound
from bench.gpu_measure import arguments, reset_peak, set_tf32, snr_db, summary, sync, timed_stream, write
from bench.lengths import TEXTS, codes_for
from voicefarm.engines.base import SynthesisRequest
from voicefarm.fleet.selftest import voiced_signal

os.environ["HF_HUB_OFFLINE"] = "1"  # any hub lookup fails instead of hanging
# The checkpoint builder is a script beside the XTTS engine's tests, not part of its package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workers" / "xtts" / "tests"))

RELEASED_MAX_GEN_TOKENS = 602  # the released config's gpt_max_audio_tokens (605) less 3
LANGUAGE = "en"
VOICE = "gpu-report-voice"
REFERENCE = voiced_signal(6.0, REFERENCE_RATE), REFERENCE_RATE  # the cloned voice's sample


def checkpoint(work: Path, tiny: bool) -> Path:
    from tiny_checkpoint import build_checkpoint

    target = work / ("xtts-tiny" if tiny else "xtts-released")
    if not all((target / name).is_file() for name in REQUIRED_FILES):
        build_checkpoint(target, dims="tiny" if tiny else "real", max_gen_tokens=RELEASED_MAX_GEN_TOKENS)
    return target


def request(text: str) -> SynthesisRequest:
    return SynthesisRequest(text, VOICE, LANGUAGE, reference=REFERENCE, reference_key=VOICE)


def measure(engine: FixedLengthXtts, device: str, bf16: bool, texts: list[str]) -> dict:
    """One loaded engine in one mode: latents once then cached, then every text streamed."""
    set_tf32(bf16)  # after load(), which turns TF32 on for CUDA: the fp32 baseline runs without
    voice = request("")
    started = time.perf_counter()
    engine._latents(voice)
    sync(device)
    latents_first = time.perf_counter() - started
    started = time.perf_counter()
    engine._latents(voice)
    latents_cached = time.perf_counter() - started

    engine.synthesize(request("Warm up."))
    reset_peak(device)
    first_s, total_s, audio_s = [], [], []
    for n, text in enumerate(texts):
        torch.manual_seed(n)
        job = request(text)
        first, total, audio = timed_stream(device, lambda e=engine, r=job: (a.samples for a in e.stream(r)))
        first_s.append(first)
        total_s.append(total)
        audio_s.append(len(audio) / SAMPLE_RATE)
    return summary(
        first_s,
        total_s,
        audio_s,
        device,
        codes=sum(codes_for(t) for t in texts),
        latents_ms_first=round(latents_first * 1000, 1),
        latents_ms_cached=round(latents_cached * 1000, 3),
        latents_computed=engine.latents_computed,
    )


def same_codes_snr(engine: FixedLengthXtts, device: str, texts: list[str]) -> float:
    """bf16's audio against fp32's for the same codes: codes generated once by the fp32 engine,
    then the GPT's latents for them computed in each, and both decoded by the fp32 HiFi-GAN."""
    model = engine._loaded()
    cond, speaker = engine._latents(request(""))
    ratios = []
    for n, text in enumerate(texts):
        torch.manual_seed(n)
        tokens = torch.IntTensor(model.tokenizer.encode(text.lower(), lang=LANGUAGE)).unsqueeze(0).to(model.device)
        with torch.no_grad():
            codes = model.gpt.generate(
                cond_latents=cond, text_inputs=tokens, min_new_tokens=bound(model, text), do_sample=True
            )
            wavs = []
            for bf16 in (False, True):
                with autocast(device if bf16 else None):
                    latents = model.gpt(
                        tokens,
                        torch.tensor([tokens.shape[-1]], device=model.device),
                        codes,
                        torch.tensor([codes.shape[-1] * model.gpt.code_stride_len], device=model.device),
                        cond_latents=cond,
                        return_attentions=False,
                        return_latent=True,
                    )
                wavs.append(model.hifigan_decoder(latents.float(), g=speaker).squeeze().cpu().numpy())
        ratios.append(snr_db(*wavs))
    return statistics.median(ratios)


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0])
    texts = TEXTS[: args.texts] if args.texts else TEXTS
    device = args.device
    model_dir = checkpoint(args.work, args.tiny)
    results = {}
    for bf16 in (False, True):
        engine = FixedLengthXtts(model_dir, device=device, latents_store=None, bf16=bf16)
        engine.load()
        results[bf16] = measure(engine, device, bf16, texts)
        if not bf16:
            snr = same_codes_snr(engine, device, texts)
        del engine
        gc.collect()
    fp32, bf16 = results[False], {**results[True], "snr_db_vs_fp32": round(snr, 2)}
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    write(
        args.out,
        {
            "engine": "xtts",
            "device": name,
            "torch": torch.__version__,
            "arch_list": torch.cuda.get_arch_list() if torch.cuda.is_available() else [],
            "sizes": "tiny" if args.tiny else "released",
            "fp32": fp32,
            "bf16": bf16,
        },
    )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
