"""`make bench`: Piper through the farm vs Piper in-process, and cache-hit submit latency; then
fair admission under a flood (bench.fairness), recovery from a dead worker (bench.recovery),
admission's active-jobs count with a million finished jobs (bench.admission), the time to a
stream's first audio (bench.streaming), word-timestamp accuracy at known sentence boundaries
(bench.timestamps) and a long document over one and two workers (bench.longform).

Targets (issue 2): farm/raw throughput ratio >= 0.95; cache-hit POST /v1/jobs p50 <= 2 ms.
Issue 13: median sentence-boundary error of word timestamps <= 80 ms.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime

import httpx
from rich.console import Console

from bench import admission
from bench.farm_env import bench_environment, wait

console = Console()

PHRASES = [
    "Your order has shipped and will arrive on Tuesday.",
    "Please hold while we connect you to the next available agent.",
    "The meeting has been moved to three o'clock this afternoon.",
    "Thank you for calling. How can I help you today?",
    "Your verification code is four, seven, two, nine.",
    "The weather tomorrow will be sunny with a light breeze from the west.",
    "I did not quite catch that. Could you say it again?",
    "Your balance is one hundred and twenty dollars and fifty cents.",
    "The next train to the city centre leaves from platform two.",
    "We have received your request and will reply within one business day.",
    "Press one for sales, two for support, or stay on the line.",
    "Remember to save your work before the system restarts tonight.",
]
ROUNDS = 2  # each phrase twice, with different speeds so the second round is not a cache hit


def raw_piper() -> tuple[float, float]:
    """Audio seconds and wall seconds for the phrase set, synthesized in this process."""
    from voicefarm import engines
    from voicefarm.engines.base import SynthesisRequest
    from voicefarm.settings import Settings

    engine = engines.create("piper", Settings())
    engine.load()
    engine.synthesize(SynthesisRequest("Warm up.", "en_US-joe-medium", "en-US"))
    audio = 0.0
    started = time.perf_counter()
    for r in range(ROUNDS):
        for text in PHRASES:
            audio += engine.synthesize(SynthesisRequest(text, "en_US-joe-medium", "en-US", speed=1.0 + r / 10)).duration
    return audio, time.perf_counter() - started


def through_farm() -> tuple[float, float, list[float]]:
    """The same phrases via API + Redis + one Piper worker; then cache-hit latencies."""
    from voicefarm import db
    from voicefarm.auth import create_key
    from voicefarm.farm import Farm
    from voicefarm.settings import get_settings

    with bench_environment():
        settings = get_settings()
        with db.session() as s:
            key = create_key(s, "bench")
        with (
            Farm(settings, log_dir=settings.data_dir / "logs") as farm,
            httpx.Client(base_url=farm.url, headers={"X-API-Key": key}) as http,
        ):
            farm.wait_ready()
            warm = http.post("/v1/jobs", json={"text": "Warm up."}).json()
            wait(http, warm["id"])
            started = datetime.now(UTC)
            ids = [
                http.post("/v1/jobs", json={"text": t, "speed": 1.0 + r / 10}).json()["id"]
                for r in range(ROUNDS)
                for t in PHRASES
            ]
            done = [wait(http, job_id) for job_id in ids]
            audio = sum(job["duration"] for job in done)
            # The server's own finish times: how often we poll must not count as farm time.
            finished = max(datetime.fromisoformat(job["timings"]["finished"]) for job in done)
            wall = (finished - started).total_seconds()

            body = {"text": PHRASES[0]}
            latencies = []
            for _ in range(50):  # warm the connection and the API's caches
                http.post("/v1/jobs", json=body)
            for _ in range(1000):
                t0 = time.perf_counter()
                r = http.post("/v1/jobs", json=body)
                latencies.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200 and r.json()["cache"] == "hit", r.text
    return audio, wall, latencies


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    from bench import fairness, longform, recovery, streaming, timestamps

    raw_audio, raw_wall = raw_piper()
    farm_audio, farm_wall, latencies = through_farm()
    raw_tp, farm_tp = raw_audio / raw_wall, farm_audio / farm_wall
    ratio = farm_tp / raw_tp
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    console.print(f"phrases: {len(PHRASES) * ROUNDS}, audio {raw_audio:.1f} s")
    console.print(f"piper in-process : {raw_tp:6.2f} audio s / wall s")
    console.print(f"piper via farm   : {farm_tp:6.2f} audio s / wall s (API + Redis + PostgreSQL + 1 worker)")
    console.print(f"farm / in-process: {ratio:6.3f}   target >= 0.95  {'ok' if ratio >= 0.95 else 'MISSED'}")
    console.print(
        f"cache-hit POST /v1/jobs over {len(latencies)} requests: p50 {p50:.2f} ms, p99 {p99:.2f} ms   "
        f"target p50 <= 2 ms  {'ok' if p50 <= 2 else 'MISSED'}"
    )
    fairness.main()
    recovery.main()
    admission.main()
    streaming.main()
    timestamps.main()
    longform.main()


if __name__ == "__main__":
    main()
