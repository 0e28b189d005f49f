"""`make bench`, metrics: GET /metrics and GET /v1/engines against a history of finished jobs.

A PostgreSQL database of its own gets a synthetic history, 1M and then 10M finished jobs with
their attempts (VOICEFARM_BENCH_HISTORY="1000000,10000000" chooses the sizes), each size
inserted by INSERT ... SELECT generate_series. A real API process answers; each call's p50 at
each size is printed against the same call on the empty database, measured first in the same
run, with the plan PostgreSQL chose for the queries that read jobs.

Target (issue 12): p50 under 50 ms at 1M and at 10M. Before, 1M took /metrics to 2,472 ms and
/v1/engines to 841 ms: both scanned the whole jobs and attempts tables.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import ClauseElement, text
from sqlalchemy.orm import Session

from bench.farm_env import bench_environment

console = Console()
ENGINES = ["piper", "xtts", "styletts2", "google"]
CALLS = 100
CHUNK = 500_000
TARGET_MS = 50.0

# One statement per kind of row, over jobs [first, last]. Every tenth job followed an identical
# one (no attempt of its own), every 25th failed; the rest succeeded on one of four engines, in
# one attempt, some after an attempt that failed and moved them on.
CHAINS = ", ".join(
    "'" + json.dumps([{"engine": e, "voice": "en_US-joe-medium", "cloned": False, "key": "k", "source": "s"}]) + "'"
    for e in ENGINES
)
JOBS = f"""
INSERT INTO jobs (id, tenant_id, status, text, voice, voice_version, language, quality, format, speed,
                  chain, engine, content_key, leader_id, object_key, duration, sample_rate,
                  synthesis_seconds, error, created_at, started_at, finished_at)
SELECT lpad(to_hex(i), 32, '0'), 'bench', CASE WHEN i % 25 = 0 THEN 'failed' ELSE 'succeeded' END,
       'Synthetic history, sentence number ' || i, 'en_US-joe-medium', '1', 'en-US', 'fast', 'wav', 1.0,
       (ARRAY[{CHAINS}])[1 + i % 4]::json, (ARRAY['piper', 'xtts', 'styletts2', 'google'])[1 + i % 4], k,
       CASE WHEN i % 10 = 0 THEN lpad(to_hex(i - 1), 32, '0') END,
       CASE WHEN i % 25 <> 0 THEN 'audio/' || k || '.wav' END,
       CASE WHEN i % 25 <> 0 THEN d END, CASE WHEN i % 25 <> 0 THEN 22050 END,
       CASE WHEN i % 25 <> 0 THEN d * (0.05 + (i % 7) / 20.0) END,
       CASE WHEN i % 25 = 0 THEN 'every engine failed: synthetic' END,
       t, t + interval '1 second', t + interval '3 seconds'
FROM (SELECT i, lpad(to_hex(i), 64, '0') AS k, 1.0 + (i % 50) / 10.0 AS d,
             timestamptz '2025-01-01' + i * interval '1 second' AS t
      FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS i) AS g
"""
ATTEMPTS = """
INSERT INTO attempts (job_id, engine, worker, outcome, error, rerouted_to, started_at, finished_at)
SELECT lpad(to_hex(i), 32, '0'), (ARRAY['piper', 'xtts', 'styletts2', 'google'])[1 + i % 4], 'bench:1',
       CASE WHEN i % 25 = 0 THEN 'failed' ELSE 'succeeded' END,
       CASE WHEN i % 25 = 0 THEN 'synthetic failure' END, NULL,
       timestamptz '2025-01-01' + i * interval '1 second' + interval '1 second',
       timestamptz '2025-01-01' + i * interval '1 second' + interval '3 seconds'
FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS i WHERE i % 10 <> 0
"""
# A few jobs in flight, as on a farm at work: what the gauges count.
ACTIVE = """
INSERT INTO jobs (id, tenant_id, status, text, voice, voice_version, language, quality, format, speed,
                  chain, engine, content_key, created_at, started_at)
SELECT 'active' || lpad(to_hex(i), 26, '0'), 'bench', CASE WHEN i % 3 = 0 THEN 'running' ELSE 'queued' END,
       'In flight ' || i,
       'en_US-joe-medium', '1', 'en-US', 'fast', 'wav', 1.0, '[]',
       (ARRAY['piper', 'xtts', 'styletts2', 'google'])[1 + i % 4],
       md5('active-key' || i), now(), CASE WHEN i % 3 = 0 THEN now() END
FROM generate_series(1, 40) AS i
"""


def sizes() -> list[int]:
    return sorted(int(n) for n in os.environ.get("VOICEFARM_BENCH_HISTORY", "1000000,10000000").split(","))


def insert(first: int, last: int) -> None:
    """Finished jobs first..last and their attempts, in a session of its own. Foreign keys, true
    by construction, are not checked row by row, as in a bulk load."""
    from voicefarm.store import db

    with db.session() as s:
        s.execute(text("SET LOCAL session_replication_role = replica"))
        s.execute(text(JOBS), {"first": first, "last": last})
        s.execute(text(ATTEMPTS), {"first": first, "last": last})


def grow(s: Session, have: int, want: int) -> float:
    """Add finished jobs have+1 .. want, in chunks on two connections (this machine's cores);
    seconds taken."""
    started = time.perf_counter()
    chunks = [(first, min(first + CHUNK - 1, want)) for first in range(have + 1, want + 1, CHUNK)]
    with ThreadPoolExecutor(2) as pool:
        for done, future in enumerate(as_completed(pool.submit(insert, *chunk) for chunk in chunks), 1):
            future.result()
            console.print(f"  {done}/{len(chunks)} chunks inserted ({time.perf_counter() - started:.0f} s)")
    # What autovacuum does on its own after a bulk load: fresh statistics for the planner.
    s.execute(text("ANALYZE jobs"))
    s.execute(text("ANALYZE attempts"))
    s.commit()
    return time.perf_counter() - started


def plan(s: Session, statement: ClauseElement) -> str:
    """PostgreSQL's plan for a statement, as EXPLAIN prints it."""
    compiled = statement.compile(dialect=s.get_bind().dialect, compile_kwargs={"literal_binds": True})
    return "\n".join(row[0] for row in s.execute(text(f"EXPLAIN {compiled}")))


def indexes_used(s: Session) -> str:
    """Which index each query that reads jobs goes through, as PostgreSQL plans it now."""
    from voicefarm.telemetry import stats

    used = []
    for what, statement in (("active jobs", stats.ACTIVE_JOBS), ("recent syntheses", stats.recent(ENGINES))):
        steps = plan(s, statement)
        found = [name for name in ("ix_jobs_status", "ix_jobs_synthesized") if name in steps]
        used.append(f"{what} through {found[0]}" if found else f"{what} WITHOUT AN INDEX:\n{steps}")
    return "; ".join(used)


def p50(http: httpx.Client, path: str) -> float:
    for _ in range(50):  # warm the connection, the API process and its caches
        http.get(path).raise_for_status()
    times = []
    for _ in range(CALLS):
        started = time.perf_counter()
        http.get(path).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(http: httpx.Client) -> dict[str, float]:
    return {path: p50(http, path) for path in ("/metrics", "/v1/engines")}


def main() -> None:
    from voicefarm.ops.supervisor import free_port
    from voicefarm.settings import get_settings
    from voicefarm.store import db
    from voicefarm.tenancy.auth import create_key

    rows: list[tuple[str, dict[str, float]]] = []
    with bench_environment():
        get_settings.cache_clear()
        port = free_port()
        env = {**os.environ, "VOICEFARM_ENGINES": json.dumps(ENGINES), "VOICEFARM_API_PORT": str(port)}
        with db.session() as s:
            admin = create_key(s, "bench-ops", admin=True)
            create_key(s, "bench")
        # Unlogged: the history goes in without writing it twice (WAL). The plans and the
        # endpoints' costs are the same; the database is dropped at the end.
        # A logged table may not refer to an unlogged one: those that refer to jobs go first.
        with db.sql_engine().begin() as conn:
            for table in ("attempts", "segments", "jobs"):
                conn.execute(text(f"ALTER TABLE {table} SET UNLOGGED"))
        api = subprocess.Popen(["voicefarm", "api"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": admin}, timeout=60) as http:
                wait_healthy(http)
                rows.append(("empty", measure(http)))
                with db.session() as s:
                    s.execute(text(ACTIVE))
                    s.commit()
                    have = 0
                    for size in sizes():
                        console.print(f"history of {size:,} finished jobs:")
                        seconds = grow(s, have, size)
                        have = size
                        console.print(f"  inserted and analysed in {seconds:.0f} s; {indexes_used(s)}")
                        rows.append((f"{size:,}", measure(http)))
        finally:
            api.terminate()
            api.wait(30)
            db.sql_engine().dispose()
    report(rows)


def wait_healthy(http: httpx.Client) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if http.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the bench API did not come up")
        time.sleep(0.2)


def report(rows: list[tuple[str, dict[str, float]]]) -> None:
    baseline = rows[0][1]
    table = Table(title=f"p50 of {CALLS} calls, ms (x: against the empty database); target < {TARGET_MS:.0f} ms")
    for column in ("finished jobs", "/metrics", "x", "/v1/engines", "x", "target"):
        table.add_column(column, justify="right")
    for size, p in rows:
        table.add_row(
            size,
            f"{p['/metrics']:.1f}",
            f"{p['/metrics'] / baseline['/metrics']:.2f}",
            f"{p['/v1/engines']:.1f}",
            f"{p['/v1/engines'] / baseline['/v1/engines']:.2f}",
            "ok" if all(v < TARGET_MS for v in p.values()) else "MISSED",
        )
    console.print(table)


if __name__ == "__main__":
    main()
