"""What the GPU report measures of one engine, whichever it is: run in that engine's own
environment (torch is imported here), by bench.gpu_xtts and bench.gpu_styletts2."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch


def arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", default="cuda", help="cuda (pinned with CUDA_VISIBLE_DEVICES) or cpu")
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny model instead of the released sizes")
    parser.add_argument("--texts", type=int, default=0, help="the first N benchmark texts; 0 for all")
    parser.add_argument("--work", type=Path, required=True, help="where the checkpoint is built")
    parser.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    return parser.parse_args()


def percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    """How far `other` strays from `reference`, as a signal-to-noise ratio in dB."""
    n = min(len(reference), len(other))
    noise = float(np.sum((reference[:n] - other[:n]) ** 2))
    signal = float(np.sum(reference[:n] ** 2))
    return float("inf") if noise == 0 else 10 * np.log10(signal / noise)


def is_cuda(device: str) -> bool:
    # "cuda:1" too: compared with "cuda" alone, such a run would time without synchronising.
    return torch.device(device).type == "cuda"


def sync(device: str) -> None:
    if is_cuda(device):
        torch.cuda.synchronize()


def set_tf32(on: bool) -> None:
    """TF32 for what runs in fp32 (matmuls and convolutions): the fp32 baseline runs without it."""
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def reset_peak(device: str) -> None:
    if is_cuda(device):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_mb(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if is_cuda(device) else None


def timed_stream(device: str, chunks: Callable[[], Iterator[np.ndarray]]) -> tuple[float, float, np.ndarray]:
    """(seconds to the first chunk, seconds in all, the audio) of one streamed synthesis."""
    started = time.perf_counter()
    first = None
    pieces = []
    for chunk in chunks():
        if first is None:
            sync(device)
            first = time.perf_counter() - started
        pieces.append(chunk)
    sync(device)
    total = time.perf_counter() - started
    assert first is not None, "the engine yielded no audio"
    return first, total, np.concatenate(pieces)


def summary(first_s: list[float], total_s: list[float], audio_s: list[float], device: str, **more: Any) -> dict:
    rtf = [t / a for t, a in zip(total_s, audio_s, strict=True)]
    return {
        "texts": len(rtf),
        "audio_seconds": round(sum(audio_s), 3),
        "rtf_p50": round(statistics.median(rtf), 4),
        "rtf_p95": round(percentile(rtf, 95), 4),
        "first_chunk_ms_p50": round(statistics.median(first_s) * 1000, 1),
        "first_chunk_ms_p95": round(percentile(first_s, 95) * 1000, 1),
        "peak_vram_mb": None if (peak := peak_mb(device)) is None else round(peak, 1),
        **more,
    }


def write(out: Path, result: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
