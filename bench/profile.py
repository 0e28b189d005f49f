"""Where one Piper worker's time goes over 100 jobs: py-spy samples its pool process, idle waits
included, while a production-shaped farm (Redis, PostgreSQL, S3 through rclone, the API) runs
the jobs, submitted at once. It prints the share of the samples in each of the farm's own
functions, what they call included: what the engine, the store and the database cost a job.

    python -m bench.profile [--jobs 100] [--raw FILE]

Run from another checkout's root (with this file copied under its bench/), it profiles that
checkout's worker: how the note's "before" was measured.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from bench.cost import PHRASES
from bench.farm_env import bench_environment, wait

WAITING = "billiard/connection.py"  # the pool process reads its next task from the main process
TOP = 16


# The processes, a child after its parent, then the thread: a repeated group keeps its last.
SAMPLE = re.compile(r'(?:process (\d+):"([^"]*)";)+thread \((\d+)\)[^;]*')
LINE = re.compile(r":\d+\)$")  # a frame is `function (file:line)`: a function counts once, at any line


def shares(raw: Path, worker: int) -> tuple[int, Counter[str]]:
    """The samples of the main threads of the worker's pool processes (forks, with its command
    line; not, say, multiprocessing's resource tracker), and how many of them were in each of
    the farm's functions, callees included, or waiting for the next task. py-spy writes each
    stack as its processes, its thread, its frames from the outermost in, and a count."""
    total, counts = 0, Counter[str]()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        sample = SAMPLE.match(stack)
        if sample is None or int(sample[1]) == worker or sample[1] != sample[3] or " worker " not in sample[2]:
            continue
        frames = stack[sample.end() :].split(";")
        total += int(n)
        within = {LINE.sub(")", f) for f in frames if "(voicefarm/" in f}
        if any(WAITING in f for f in frames):
            within.add("waiting for the next task (billiard)")
        counts.update(dict.fromkeys(within, int(n)))
    return total, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--raw", type=Path, help="keep py-spy's raw samples here")
    args = parser.parse_args()
    spy = Path(sys.executable).parent / "py-spy"

    from voicefarm.ops.supervisor import Farm
    from voicefarm.settings import get_settings
    from voicefarm.store import db
    from voicefarm.tenancy.auth import create_key

    with bench_environment(s3=True):
        settings = get_settings()
        with db.session() as s:
            key = create_key(s, "bench")
        raw = args.raw or settings.data_dir / "profile.raw"
        farm = Farm(settings, log_dir=settings.data_dir / "logs", workers=["piper"])
        with farm, httpx.Client(base_url=farm.url, headers={"X-API-Key": key}) as http:
            farm.wait_ready()
            wait(http, http.post("/v1/jobs", json={"text": "Warm up."}).json()["id"])
            worker = next(p.pid for p in farm.procs if "worker" in p.args)
            record = subprocess.Popen(
                [
                    *(spy, "record", "--pid", str(worker), "--subprocesses", "--idle", "--threads"),
                    *("--nonblocking", "--rate", "200", "--format", "raw", "--output", str(raw)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1)  # py-spy attaches
            started = time.perf_counter()
            ids = [
                http.post("/v1/jobs", json={"text": PHRASES[n % len(PHRASES)], "speed": 0.5 + n / 100}).json()["id"]
                for n in range(args.jobs)
            ]
            done = [wait(http, job_id) for job_id in ids]
            wall = time.perf_counter() - started
            record.send_signal(signal.SIGINT)
            record.wait(60)
        total, counts = shares(raw, worker)
    print(f"One Piper worker's pool process over {args.jobs} jobs: {total} samples in {wall:.1f} s")
    table = Table()
    for column in ("the farm's function (callees included)", "share of samples"):
        table.add_column(column, justify="right" if column.startswith("share") else "left")
    # The outermost frames (voicefarm's CLI, the task) hold nearly every sample: what is under them tells.
    for name, n in [(name, n) for name, n in counts.most_common() if n < 0.99 * total][:TOP]:
        table.add_row(name, f"{n / total:.1%}")
    Console(width=140).print(table)
    synthesis = sum(job["synthesis_seconds"] for job in done)
    print(f"the engine's share of the wall time, by the jobs' own timings: {synthesis / wall:.3f}")


if __name__ == "__main__":
    main()
