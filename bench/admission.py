"""`make bench`: the active-jobs count that admission runs before each new job is recorded, with
1,000,000 finished jobs of the same tenant and 100,000 queued jobs of another in PostgreSQL,
against the same count without its partial index (the indexes on tenant and status only)."""

from __future__ import annotations

import statistics
import time

from rich.console import Console
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from bench.farm_env import bench_environment
from voicefarm.store.db import make_sql_engine
from voicefarm.store.models import Tenant
from voicefarm.tenancy.admission import active_jobs

console = Console()
HISTORY, FLOOD, ACTIVE = 1_000_000, 100_000, 300
LIMIT = 20_000  # VOICEFARM_MAX_ACTIVE_JOBS's default

JOBS = """INSERT INTO jobs (id, tenant_id, status, text, voice, voice_version, language, quality, format,
    speed, chain, engine, content_key, created_at)
SELECT md5(CAST(:tenant AS varchar) || i), CAST(:tenant AS varchar),
    CASE WHEN i <= :active THEN 'queued' ELSE 'succeeded' END,
    'x', 'v', '1', 'en', 'fast', 'wav', 1.0, '[]', 'piper', md5(CAST(:tenant AS varchar) || 'key' || i), now()
FROM generate_series(1, :n) AS i"""


def history(engine: Engine) -> None:
    with Session(engine) as s:
        s.add_all([Tenant(id=name, name=name) for name in ("busy", "flood")])
        s.commit()
    with engine.begin() as c:
        for tenant, n, active in (("busy", HISTORY + ACTIVE, ACTIVE), ("flood", FLOOD, FLOOD)):
            c.execute(text(JOBS), {"tenant": tenant, "n": n, "active": active})
        c.execute(text("ANALYZE jobs"))


def p50(engine: Engine, rounds: int = 200) -> float:
    """Median milliseconds of the count, after enough rounds for the driver to prepare it."""
    with Session(engine) as s:
        for _ in range(20):
            assert active_jobs(s, "busy", LIMIT) == ACTIVE
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            active_jobs(s, "busy", LIMIT)
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    with bench_environment() as env:
        engine = make_sql_engine(env["VOICEFARM_DATABASE_URL"])
        history(engine)
        indexed = p50(engine)
        with engine.begin() as c:
            c.execute(text("DROP INDEX ix_jobs_active_tenant"))
        unindexed = p50(engine)
        engine.dispose()
    console.print(
        f"admission's active-jobs count with {HISTORY:,} finished jobs of the tenant and {FLOOD:,} queued of "
        f"another: p50 {indexed:.2f} ms; without its partial index {unindexed:.2f} ms ({unindexed / indexed:.0f}x)"
    )


if __name__ == "__main__":
    main()
