"""The farm's own cost per job, three times over: Piper through a production-shaped farm (Redis,
PostgreSQL, S3 through rclone, the API) against the same Piper in this process, in one run.

  P1  farm throughput / in-process throughput, one worker          target >= 0.95
  P2  cache-hit POST /v1/jobs, p50 and p99                         target <= 2 ms, <= 10 ms
  P3  submit to worker start (the job's own timings), p50          target <= 5 ms
  P4  end to end minus synthesis, cache miss, p50                  target <= 30 ms
  P6  two Piper workers against one, with the cores split between them

Beside P1, the same farm with `voicefarm worker --pipeline` (two pool processes: one stores and
records a job while the other synthesizes the next), so the pipeline's effect is measured in the
same run; and P4 in its parts, by the job's own timings.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from rich.console import Console
from rich.table import Table

from bench.farm_env import bench_environment, wait

console = Console(width=140)  # the table's rows on one line each, in a log as on a terminal

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
ROUNDS = 3  # each phrase at three speeds: no job of a farm is a cache hit of another
REPETITIONS = 3
SINGLES = 24  # jobs sent one at a time, for P3 and P4
POLL = 0.005  # how often P4 asks whether a job is done; half of it, on average, counts as farm time


def raw_piper() -> tuple[float, float]:
    """Audio seconds and wall seconds for the phrase set, synthesized in this process."""
    from voicefarm import engines
    from voicefarm.engines.base import SynthesisRequest
    from voicefarm.settings import Settings

    engine = engines.create("piper", Settings(piper_spin=True))  # as piper-tts loads it: its fastest alone
    engine.load()
    engine.synthesize(SynthesisRequest("Warm up.", "en_US-joe-medium", "en-US"))
    audio = 0.0
    started = time.perf_counter()
    for r in range(ROUNDS):
        for text in PHRASES:
            audio += engine.synthesize(SynthesisRequest(text, "en_US-joe-medium", "en-US", speed=1.0 + r / 10)).duration
    return audio, time.perf_counter() - started


def at(job: dict, moment: str) -> datetime:
    return datetime.fromisoformat(job["timings"][moment])


@dataclass
class FarmRun:
    throughput: float  # audio seconds per wall second
    busy: float  # the engine's share of the wall time: its synthesis seconds over it
    hits: list[float]  # cache-hit submit latencies, ms
    starts: list[float]  # submit to worker start, ms
    overheads: list[float]  # end to end minus synthesis, ms
    after: list[float]  # worker start to recorded, minus synthesis (gate, encode, store, record), ms


def through_farm(flags: tuple[str, ...] = (), workers: int = 1, env: dict[str, str] | None = None) -> FarmRun:
    """The phrase set through a fresh farm at once (throughput); then, on a warm farm, jobs one
    at a time (P3, P4) and cache hits (P2)."""
    from voicefarm.ops.supervisor import Farm
    from voicefarm.settings import get_settings
    from voicefarm.store import db
    from voicefarm.tenancy.auth import create_key

    with bench_environment(s3=True):
        settings = get_settings()
        with db.session() as s:
            key = create_key(s, "bench")
        logs = settings.data_dir / "logs"
        farm = Farm(settings, env=env, log_dir=logs, workers=["piper"] * workers, worker_flags=flags)
        with farm, httpx.Client(base_url=farm.url, headers={"X-API-Key": key}) as http:
            farm.wait_ready()
            wait(http, http.post("/v1/jobs", json={"text": "Warm up."}).json()["id"])
            started = datetime.now(UTC)
            ids = [
                http.post("/v1/jobs", json={"text": t, "speed": 1.0 + r / 10}).json()["id"]
                for r in range(ROUNDS)
                for t in PHRASES
            ]
            done = [wait(http, job_id) for job_id in ids]
            # The server's own finish times: how often we poll must not count as farm time.
            wall = (max(at(job, "finished") for job in done) - started).total_seconds()
            throughput = sum(job["duration"] for job in done) / wall
            busy = sum(job["synthesis_seconds"] for job in done) / wall / workers
            if workers > 1 or flags:
                return FarmRun(throughput, busy, [], [], [], [])

            starts, overheads, after = [], [], []
            for n in range(SINGLES):
                body = {"text": PHRASES[n % len(PHRASES)], "speed": 0.9 - n // len(PHRASES) / 10}
                t0 = time.perf_counter()
                job = http.post("/v1/jobs", json=body).json()
                while job["status"] not in ("succeeded", "failed"):
                    time.sleep(POLL)
                    job = http.get(f"/v1/jobs/{job['id']}").json()
                elapsed = time.perf_counter() - t0
                assert job["status"] == "succeeded", job
                starts.append((at(job, "started") - at(job, "queued")).total_seconds() * 1000)
                overheads.append((elapsed - job["synthesis_seconds"]) * 1000)
                ran = (at(job, "finished") - at(job, "started")).total_seconds()
                after.append((ran - job["synthesis_seconds"]) * 1000)

            body = {"text": PHRASES[0]}
            for _ in range(50):  # warm the connection and the API's caches
                http.post("/v1/jobs", json=body)
            hits = []
            for _ in range(1000):
                t0 = time.perf_counter()
                r = http.post("/v1/jobs", json=body)
                hits.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200 and r.json()["cache"] == "hit", r.text
    return FarmRun(throughput, busy, hits, starts, overheads, after)


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@dataclass(frozen=True)
class Figure:
    name: str
    unit: str
    target: float | None  # None: reported, no target
    at_least: bool = False  # the target is a floor, not a ceiling

    def meets(self, value: float) -> bool:
        assert self.target is not None
        return value >= self.target if self.at_least else value <= self.target


FIGURES = [
    Figure("P1 farm / in-process, 1 worker", "", 0.95, at_least=True),
    Figure("  the engine's share of the farm's wall time", "", None),
    Figure("P1 with --pipeline", "", None),
    Figure("  the engine's share of the farm's wall time", "", None),
    Figure("P2 cache-hit submit p50", "ms", 2.0),
    Figure("P2 cache-hit submit p99", "ms", 10.0),
    Figure("P3 submit to worker start p50", "ms", 5.0),
    Figure("P4 end to end minus synthesis p50", "ms", 30.0),
    Figure("  of which worker start to recorded, p50", "ms", None),
    Figure("P6 two workers / one worker", "", None),
    Figure("in-process Piper, audio s per wall s", "", None),
]


def one_repetition() -> list[float]:
    raw_audio, raw_wall = raw_piper()
    raw = raw_audio / raw_wall
    one = through_farm()
    pipelined = through_farm(flags=("--pipeline",))
    # Each worker's synthesis gets its share of the cores: two workers' ONNX Runtime threads on
    # every core would fight over them (bench.longform measured that).
    share = str(max(1, (os.cpu_count() or 2) // 2))
    two = through_farm(workers=2, env={"VOICEFARM_PIPER_THREADS": share})
    return [
        one.throughput / raw,
        one.busy,
        pipelined.throughput / raw,
        pipelined.busy,
        percentile(one.hits, 50),
        percentile(one.hits, 99),
        statistics.median(one.starts),
        statistics.median(one.overheads),
        statistics.median(one.after),
        two.throughput / one.throughput,
        raw,
    ]


def report(runs: list[list[float]]) -> None:
    table = Table(title=f"The farm's cost per job: Piper, {len(runs)} repetitions")
    for column in ["figure", *(f"run {n + 1}" for n in range(len(runs))), "median", "spread", "target", "met"]:
        table.add_column(column, justify="left" if column == "figure" else "right")
    for n, figure in enumerate(FIGURES):
        values = [run[n] for run in runs]
        digits = 3 if not figure.unit else 2
        cells = [f"{v:.{digits}f}" for v in values]
        target, met = "", ""
        if figure.target is not None:
            target = f"{'>=' if figure.at_least else '<='} {figure.target:g} {figure.unit}".strip()
            met = f"{sum(figure.meets(v) for v in values)}/{len(values)}"
        spread = f"{min(values):.{digits}f}-{max(values):.{digits}f}"
        table.add_row(figure.name, *cells, f"{statistics.median(values):.{digits}f}", spread, target, met)
    console.print(table)


def main() -> None:
    runs = []
    for n in range(REPETITIONS):
        console.print(f"[bold]farm cost, repetition {n + 1} of {REPETITIONS}[/bold]")
        runs.append(one_repetition())
    report(runs)


if __name__ == "__main__":
    main()
