"""`make bench`, XTTS batching part: one engine serving B jobs at once against coqui's one at a time.

Run with workers/xtts/.venv's interpreter: `python -m bench.xtts_batching` from the repo root.
B threads take jobs from one queue, as a worker's B job threads would. B = 1 is today's path
(coqui's `inference_stream`, one job at a time); B > 1 shares GPT steps (voicefarm_xtts.batcher).
Every job's length is fixed to the codes its text's speech takes (bench.fixed_length), so each
B does the same work. Measured:
- audio seconds made per wall second over the whole run, and its ratio to B = 1's;
- each job's first chunk, from when its thread began it (queueing before that not counted),
  p50 and p95.

On the CPU it loads a mid-size random XTTS (8 layers of 512, `--dims mid`); the GPU report
(bench.gpu_report) runs it on the released size.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from voicefarm_xtts.engine import REFERENCE_RATE, REQUIRED_FILES, SAMPLE_RATE

from bench.fixed_length import FixedLengthXtts
from bench.gpu_measure import percentile
from bench.lengths import TEXTS
from voicefarm.engines.base import SynthesisRequest
from voicefarm.fleet.selftest import voiced_signal

os.environ["HF_HUB_OFFLINE"] = "1"  # before coqui or transformers: a hub lookup fails, never hangs
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workers" / "xtts" / "tests"))

console = Console(highlight=False, soft_wrap=True)
VOICE = "bench-voice"


@dataclass(frozen=True)
class Run:
    batch: int
    jobs: int
    audio_s: float
    wall_s: float
    first_chunk_p50_s: float
    first_chunk_p95_s: float

    @property
    def audio_per_wall(self) -> float:
        return self.audio_s / self.wall_s


def checkpoint(dims: str) -> Path:
    """A random checkpoint of these dimensions, built once and cached across runs."""
    from tiny_checkpoint import build_checkpoint

    target = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "voicefarm-bench" / f"xtts-{dims}"
    if not all((target / name).is_file() for name in REQUIRED_FILES):
        partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
        # The longest text's codes: its fixed length must fit the model's own limit.
        build_checkpoint(partial, dims=dims, max_gen_tokens=400)  # type: ignore[arg-type]
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return target


def measure(model_dir: Path, device: str, batch: int, jobs: int) -> Run:
    engine = FixedLengthXtts(model_dir, device=device, latents_store=None, batch_size=batch)
    engine.load()
    reference = voiced_signal(6.0, REFERENCE_RATE), REFERENCE_RATE

    def request(text: str) -> SynthesisRequest:
        return SynthesisRequest(text, VOICE, "en", reference=reference, reference_key=VOICE)

    engine.synthesize(request("Warm up."))  # also computes the voice's latents once
    work: queue.Queue[str] = queue.Queue()
    for n in range(jobs):
        work.put(TEXTS[n % len(TEXTS)])
    audio: list[float] = []
    firsts: list[float] = []

    def serve() -> None:
        while True:
            try:
                text = work.get_nowait()
            except queue.Empty:
                return
            began, first, samples = time.perf_counter(), None, 0
            for piece in engine.stream(request(text)):
                first = first if first is not None else time.perf_counter() - began
                samples += len(piece.samples)
            assert first is not None
            firsts.append(first)
            audio.append(samples / SAMPLE_RATE)

    started = time.perf_counter()
    threads = [threading.Thread(target=serve) for _ in range(batch)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return Run(batch, jobs, sum(audio), wall, statistics.median(firsts), percentile(firsts, 95))


def compare(model_dir: Path, device: str, sizes: list[int], jobs: int) -> dict:
    """Each batch size's run, and its ratios to the first size's: `b8_over_b1` for audio seconds
    per wall second, `b8_first_chunk_p95_over_b1` for the first chunk's p95."""
    runs = [measure(model_dir, device, b, jobs) for b in sizes]
    figures: dict = {
        "device": device,
        "jobs": jobs,
        "runs": [asdict(r) | {"audio_per_wall": r.audio_per_wall} for r in runs],
    }
    base = runs[0]
    for r in runs[1:]:
        figures[f"b{r.batch}_over_b{base.batch}"] = round(r.audio_per_wall / base.audio_per_wall, 3)
        figures[f"b{r.batch}_first_chunk_p95_over_b{base.batch}"] = round(
            r.first_chunk_p95_s / base.first_chunk_p95_s, 3
        )
    return figures


def table(figures: dict) -> Table:
    runs = figures["runs"]
    base = runs[0]
    out = Table("B", "audio s", "wall s", "audio s / wall s", "× first", "first chunk p50 s", "p95 s", "p95 × first")
    for r in runs:
        out.add_row(
            str(r["batch"]),
            f"{r['audio_s']:.1f}",
            f"{r['wall_s']:.1f}",
            f"{r['audio_per_wall']:.3f}",
            f"{r['audio_per_wall'] / base['audio_per_wall']:.2f}",
            f"{r['first_chunk_p50_s']:.2f}",
            f"{r['first_chunk_p95_s']:.2f}",
            f"{r['first_chunk_p95_s'] / base['first_chunk_p95_s']:.2f}",
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", default="mid", choices=["tiny", "mid", "real"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", default="1,4", help="batch sizes, comma-separated; the first is the baseline")
    parser.add_argument("--jobs", type=int, default=0, help="jobs per size (default: twice the largest size)")
    parser.add_argument("--model-dir", type=Path, help="a checkpoint to use instead of building one of --dims")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    ns = parser.parse_args()
    sizes = [int(s) for s in ns.sizes.split(",")]
    jobs = ns.jobs or 2 * max(sizes)
    model_dir = ns.model_dir or checkpoint(ns.dims)
    console.print(f"xtts batching: {model_dir.name} on {ns.device}, {jobs} jobs per size, torch {torch.__version__}")
    figures = {"model": model_dir.name} | compare(model_dir, ns.device, sizes, jobs)
    console.print(table(figures))
    if ns.json:
        ns.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
