"""Long form (issue 14): a 20,000-character document through the production-shaped farm with one
Piper worker process and with two, against one in-process Piper call on the whole text; then the
same document with one sentence changed. Ratios are against baselines measured in this run.

On a 2-core machine two Piper processes share the cores that one call already uses (ONNX
Runtime spreads one call over both), so they oversubscribe them: expect no speed-up there, even
a slowdown, and about N with N machines.
"""

from __future__ import annotations

import math
import time
from datetime import datetime

import httpx
from rich.console import Console

from bench.farm_env import bench_environment, wait

console = Console()
PARAGRAPH = (
    "The lighthouse keeper climbed the narrow stairs every evening before the sun went down. "
    "Her brother planted tomatoes, beans and sunflowers along the garden fence. "
    "A sudden storm rolled across the valley and the farmers hurried their cattle into the barn. "
    "The old library smelled of paper, dust and the polish on its oak shelves. "
    "Every morning the baker opened his shop at six and sold warm bread to the neighbours. "
)
CHARS = 20_000


def document() -> str:
    paragraphs = []
    while sum(len(p) + 2 for p in paragraphs) < CHARS:
        paragraphs.append(f"Part {len(paragraphs) + 1}. {PARAGRAPH * 3}")
    return "\n\n".join(paragraphs)[:CHARS].rsplit(".", 1)[0] + "."


def in_process(text: str) -> float:
    """Wall seconds of one Piper call on the whole text, in this process."""
    from voicefarm import engines
    from voicefarm.engines.base import SynthesisRequest
    from voicefarm.settings import Settings

    engine = engines.create("piper", Settings())
    engine.load()
    engine.synthesize(SynthesisRequest("Warm up.", "en_US-joe-medium", "en-US"))
    started = time.perf_counter()
    engine.synthesize(SynthesisRequest(text, "en_US-joe-medium", "en-US"))
    return time.perf_counter() - started


def through_farm(workers: int, texts: list[str]) -> list[dict]:
    """Each text in turn through a fresh farm with `workers` Piper processes; the final jobs."""
    from voicefarm.ops.supervisor import Farm
    from voicefarm.settings import get_settings
    from voicefarm.store import db
    from voicefarm.tenancy.auth import create_key

    with bench_environment():
        settings = get_settings()
        with db.session() as s:
            key = create_key(s, "bench")
        with (
            Farm(settings, log_dir=settings.data_dir / "logs", workers=["piper"] * workers) as farm,
            httpx.Client(base_url=farm.url, headers={"X-API-Key": key}, timeout=30) as http,
        ):
            farm.wait_ready(timeout=300)
            warm = http.post("/v1/jobs", json={"text": "Warm up."}).json()
            wait(http, warm["id"], every=0.5)
            return [wait(http, http.post("/v1/jobs", json={"text": text}).json()["id"], every=0.5) for text in texts]


def wall(job: dict) -> float:
    """Submit to settled, by the server's own clock: how often we poll does not count."""
    timings = job["timings"]
    return (datetime.fromisoformat(timings["finished"]) - datetime.fromisoformat(timings["queued"])).total_seconds()


def main() -> None:
    text = document()
    edited = text.replace("Part 7.", "Part seven.", 1)
    raw = in_process(text)
    console.print(f"long form: one in-process Piper call on {len(text)} characters: {raw:.1f} s")
    (one,) = through_farm(1, [text])
    console.print(f"long form: farm, 1 Piper worker: {wall(one):.1f} s")
    two, again = through_farm(2, [text, edited])
    segments = one["segments"]["total"]
    join = next(a for a in one["attempts"] if a["segment"] is None)
    join_seconds = (
        datetime.fromisoformat(join["finished_at"]) - datetime.fromisoformat(join["started_at"])
    ).total_seconds()
    # What a segment costs beyond its synthesis, on one worker: messages, bookkeeping, storing.
    overhead = (wall(one) - one["synthesis_seconds"] - join_seconds) / segments
    per_char = one["synthesis_seconds"] / len(text)
    console.print(f"long form: {len(text)} characters, {segments} segments, {one['duration']:.0f} s of audio")
    console.print(f"one in-process Piper call : {raw:6.1f} s")
    console.print(f"farm, 1 Piper worker      : {wall(one):6.1f} s   ({raw / wall(one):.2f}x the in-process call)")
    console.print(
        f"farm, 2 Piper workers     : {wall(two):6.1f} s   ({wall(one) / wall(two):.2f}x one worker, "
        f"{raw / wall(two):.2f}x the in-process call)"
    )
    console.print(
        f"edited (one sentence)     : {wall(again):6.1f} s   {again['segments']['attempts']} segment(s) synthesized, "
        f"{again['segments']['cached']} from the store"
    )
    on = {n: book(100_000, n, per_char, overhead, join_seconds) for n in (1, 10, 50)}
    console.print(
        f"synthesis {per_char * 1000:.2f} s per 1,000 characters; {overhead:.2f} s overhead per segment; "
        f"join {join_seconds:.2f} s. A 100,000-character book on such workers: about {on[1]:.0f} s on 1, "
        f"{on[10]:.0f} s on 10, {on[50]:.0f} s on 50 (docs/architecture.md)"
    )


def book(chars: int, workers: int, per_char: float, overhead: float, join_seconds: float) -> float:
    """Expected wall time of a document of `chars` on `workers` independent workers: whole rounds
    of full segments, then the join, which grows with the audio (docs/architecture.md)."""
    from voicefarm.settings import Settings

    size = Settings().segment_chars
    rounds = math.ceil(math.ceil(chars / size) / workers)
    return rounds * (size * per_char + overhead) + join_seconds * chars / CHARS


if __name__ == "__main__":
    main()
