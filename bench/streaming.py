"""Streaming (issue 13): how soon a listener hears the first audio, through the production-shaped
farm (Redis, PostgreSQL, one Piper worker), for a four-sentence paragraph, p50 over 20 runs.

- first audio byte (POST /v1/jobs, then GET /v1/jobs/{id}/stream) against the time until the
  whole job has succeeded; target: at most 0.35 x.
- first audio minus Piper's own time for the first sentence, in this process: the farm's
  overhead; target: at most 50 ms.
- the same two through POST /v1/audio/speech with stream_format "audio", whose stream ends once
  the job has succeeded.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime

import httpx
from rich.console import Console

from bench.farm_env import bench_environment

console = Console()

SENTENCES = [
    "Your order has shipped and will arrive on Tuesday.",
    "Please keep this message until the parcel is in your hands.",
    "If anything is missing, reply to this message within thirty days.",
    "Thank you for shopping with us, and have a pleasant afternoon.",
]
PARAGRAPH = " ".join(SENTENCES)
RUNS = 20


def speeds(offset: float) -> list[float]:
    """A speed per run, so that no run is a cache hit of another."""
    return [round(offset + n / 100, 2) for n in range(RUNS)]


def first_sentence_seconds(runs: list[float]) -> float:
    """Piper's own time for the first sentence, in this process, p50 at the runs' speeds."""
    from voicefarm import engines
    from voicefarm.engines.base import SynthesisRequest
    from voicefarm.settings import Settings

    engine = engines.create("piper", Settings())
    engine.load()
    engine.synthesize(SynthesisRequest("Warm up.", "en_US-joe-medium", "en-US"))
    times = []
    for speed in runs:
        started = time.perf_counter()
        engine.synthesize(SynthesisRequest(SENTENCES[0], "en_US-joe-medium", "en-US", speed=speed))
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def via_jobs(http: httpx.Client, speed: float) -> tuple[float, float]:
    """Seconds to the first audio byte and until the job succeeded, both from the POST."""
    submitted, started = datetime.now(UTC), time.perf_counter()
    job_id = http.post("/v1/jobs", json={"text": PARAGRAPH, "speed": speed, "format": "pcm"}).json()["id"]
    first = None
    with http.stream("GET", f"/v1/jobs/{job_id}/stream") as r:
        for _ in r.iter_bytes():
            first = first or time.perf_counter() - started
    job = http.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and first is not None, job
    return first, (datetime.fromisoformat(job["timings"]["finished"]) - submitted).total_seconds()


def via_speech(http: httpx.Client, speed: float) -> tuple[float, float]:
    """Seconds to the first audio byte and to the stream's end (the job succeeded), from the POST."""
    body = {"model": "tts-1", "voice": "alloy", "input": PARAGRAPH, "speed": speed, "response_format": "pcm"}
    started = time.perf_counter()
    first = None
    with http.stream("POST", "/v1/audio/speech", json=body) as r:
        assert r.status_code == 200, r.read()
        for _ in r.iter_bytes():
            first = first or time.perf_counter() - started
    assert first is not None
    return first, time.perf_counter() - started


def report(name: str, runs: list[tuple[float, float]], engine_first: float) -> None:
    first = statistics.median(r[0] for r in runs)
    whole = statistics.median(r[1] for r in runs)
    ratio, overhead = first / whole, (first - engine_first) * 1000
    console.print(f"{name}: first audio p50 {first * 1000:.0f} ms, whole job p50 {whole * 1000:.0f} ms")
    console.print(f"  first / whole      : {ratio:.3f}   target <= 0.35  {'ok' if ratio <= 0.35 else 'MISSED'}")
    console.print(f"  farm overhead      : {overhead:.0f} ms   target <= 50 ms  {'ok' if overhead <= 50 else 'MISSED'}")


def main() -> None:
    from voicefarm.ops.supervisor import Farm
    from voicefarm.settings import get_settings
    from voicefarm.store import db
    from voicefarm.tenancy.auth import create_key

    job_speeds, speech_speeds = speeds(1.0), speeds(1.3)
    with bench_environment():
        settings = get_settings()
        with db.session() as s:
            key = create_key(s, "bench")
        with (
            Farm(settings, log_dir=settings.data_dir / "logs", workers=["piper"]) as farm,
            httpx.Client(base_url=farm.url, headers={"X-API-Key": key}, timeout=60) as http,
        ):
            farm.wait_ready()
            via_jobs(http, 0.9)  # warm the worker, the API and their connections
            via_speech(http, 0.8)
            jobs = [via_jobs(http, speed) for speed in job_speeds]
            speech = [via_speech(http, speed) for speed in speech_speeds]
    # Measured with the farm stopped: the in-process engine has the CPU to itself, as the worker
    # did. Each path against the engine at its own speeds: a faster speed is a shorter sentence.
    jobs_first, speech_first = first_sentence_seconds(job_speeds), first_sentence_seconds(speech_speeds)
    console.print(
        f"streaming, {len(SENTENCES)} sentences, {RUNS} runs each; Piper's first sentence alone: "
        f"p50 {jobs_first * 1000:.0f} ms at the jobs' speeds, {speech_first * 1000:.0f} ms at the speech calls'"
    )
    report("GET /v1/jobs/{id}/stream    ", jobs, jobs_first)
    report("POST /v1/audio/speech (audio)", speech, speech_first)


if __name__ == "__main__":
    main()
