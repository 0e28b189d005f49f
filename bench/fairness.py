"""Fair admission: tenant B's submit-to-start time with tenant A's flood queued, against an idle
farm (issue 12). Production-shaped: Redis, PostgreSQL, one Piper worker process."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import httpx
import redis
from rich.console import Console
from sqlalchemy import delete, func, select

from bench.farm_env import bench_environment

console = Console()
FLOOD = 2000
PROBES = 10  # B's jobs, one at a time


def starts(http: httpx.Client, label: str) -> list[float]:
    """Submit-to-start seconds of B's probe jobs, each submitted once the one before finished."""
    waits = []
    for i in range(PROBES):
        job_id = http.post("/v1/jobs", json={"text": f"Tenant B asks {label} question number {i}."}).json()["id"]
        while (job := http.get(f"/v1/jobs/{job_id}").json())["status"] != "succeeded":
            time.sleep(0.02)
        queued, started = (datetime.fromisoformat(job["timings"][k]) for k in ("queued", "started"))
        waits.append((started - queued).total_seconds())
    return waits


def main() -> None:
    from voicefarm.dispatch.names import engine_queue
    from voicefarm.ops.supervisor import Farm
    from voicefarm.settings import get_settings
    from voicefarm.store import db
    from voicefarm.store.models import Job, JobStatus
    from voicefarm.tenancy.auth import create_key

    with bench_environment():
        settings = get_settings()
        with db.session() as s:
            flood_key, light_key = create_key(s, "flood-a"), create_key(s, "light-b")
        with (
            Farm(settings, log_dir=settings.data_dir / "logs", workers=["piper"]) as farm,
            httpx.Client(base_url=farm.url, headers={"X-API-Key": light_key}, timeout=30) as light,
        ):
            farm.wait_ready()
            idle = starts(light, "an idle farm a")

            def submit(i: int) -> str:
                with httpx.Client(base_url=farm.url, headers={"X-API-Key": flood_key}, timeout=30) as a:
                    r = a.post("/v1/jobs", json={"text": f"Tenant A floods the farm with sentence {i}."})
                    r.raise_for_status()
                    return str(r.json()["id"])

            with ThreadPoolExecutor(4) as pool:
                flood = list(pool.map(submit, range(FLOOD)))
            flooded = starts(light, "a flooded farm a")
            with db.session() as s:
                waiting = s.scalar(select(func.count()).where(Job.id.in_(flood), Job.status == JobStatus.queued.value))
                finished = s.execute(
                    select(Job.started_at, Job.finished_at).where(
                        Job.id.in_(flood), Job.status == JobStatus.succeeded.value
                    )
                ).all()
                s.execute(delete(Job).where(Job.id.in_(flood), Job.status == JobStatus.queued.value))
            r = redis.Redis.from_url(settings.broker_url)
            for key in r.scan_iter(f"{settings.redis_prefix}:{engine_queue('piper')}*", _type="list"):
                r.delete(key)
    p50_idle, p50_flood = statistics.median(idle), statistics.median(flooded)
    job_time = statistics.mean((end - start).total_seconds() for start, end in finished)
    console.print(
        f"fair admission, 1 Piper worker: B's submit-to-start p50 {p50_idle * 1000:.0f} ms idle, "
        f"{p50_flood * 1000:.0f} ms with A's {FLOOD} jobs queued (max {max(flooded) * 1000:.0f} ms; "
        f"{waiting} of A's still queued, {len(finished)} done by then; one of A's jobs takes "
        f"{job_time * 1000:.0f} ms)   target: about one job time per worker"
    )
