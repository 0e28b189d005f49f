"""What ops see: Prometheus metrics, engines, the cache, Flower."""

from __future__ import annotations

import os
import subprocess
import time

import httpx
import pytest
from sqlalchemy import text

from bench.metrics import plan
from tests.farm.conftest import free_port, scrape, scrape_workers, wait_final
from voicefarm.store import db
from voicefarm.telemetry import stats


@pytest.mark.fault_injection
def test_metrics_describe_the_farm(http: httpx.Client, farm) -> None:
    wait_final(http, http.post("/v1/jobs", json={"text": "Metrics, please.", "quality": "flaky"}).json()["id"])
    http.post("/v1/jobs", json={"text": "Metrics, please.", "quality": "flaky"})  # a cache hit
    # The API: the farm's present state, and this process's cache counter.
    api = scrape(f"{farm.url}/metrics")
    assert ("voicefarm_jobs", (("engine", "piper"), ("state", "queued"))) in api
    assert not any(name == "voicefarm_jobs" and ("state", "succeeded") in labels for name, labels in api)
    assert api[("voicefarm_live_workers", (("engine", "piper"),))] >= 1
    assert api[("voicefarm_live_workers", (("engine", "ghost"),))] == 0
    assert ("voicefarm_queue_depth", (("engine", "piper"),)) in api
    assert api[("voicefarm_cache_requests_total", (("result", "hit"),))] >= 1
    # History is the workers' to count, never the API's to read from the database.
    assert not {name for name, _ in api} & {"voicefarm_attempts_total", "voicefarm_synthesis_seconds_count"}
    # The workers: what the work did.
    work = scrape_workers(farm)
    assert work[("voicefarm_fallbacks_total", (("from_engine", "broken"), ("to_engine", "piper")))] >= 1
    assert work[("voicefarm_attempts_total", (("engine", "broken"), ("outcome", "failed")))] >= 1
    assert work[("voicefarm_jobs_finished_total", (("engine", "piper"), ("state", "succeeded")))] >= 1
    assert work[("voicefarm_synthesis_seconds_count", (("engine", "piper"),))] >= 1
    assert work[("voicefarm_real_time_factor_bucket", (("engine", "piper"), ("le", "+Inf")))] >= 1
    assert work[("voicefarm_job_latency_seconds_count", (("engine", "piper"),))] >= 1
    assert work[("voicefarm_tts_characters_total", (("engine", "piper"), ("tenant", "tenant-a")))] >= len(
        "Metrics, please."
    )


def test_the_ops_queries_read_jobs_through_their_indexes() -> None:
    """What keeps /metrics and /v1/engines flat whatever the history (bench/metrics.py shows the
    planner choosing these at 1M and 10M jobs): here, with sequential scans priced out, each
    query can use its index, so no change to a query or an index silently drops one."""
    with db.session() as s:
        s.execute(text("SET LOCAL enable_seqscan = off"))
        active = plan(s, stats.ACTIVE_JOBS)
        # Either index of active jobs will do: the status index, or admission's partial one.
        assert "ix_jobs_status" in active or "ix_jobs_active_tenant" in active, active
        recent = plan(s, stats.recent(["piper", "xtts"]))
        assert recent.count("using ix_jobs_synthesized on jobs") == 2, recent


def test_engines_and_cache_endpoints_need_an_admin_key(http: httpx.Client, admin_key: str) -> None:
    for method, path in (("GET", "/v1/engines"), ("GET", "/v1/cache/stats"), ("DELETE", "/v1/cache")):
        r = http.request(method, path)
        assert r.status_code == 403 and "admin" in r.json()["error"]
    admin = {"X-API-Key": admin_key}
    engines = {e["name"]: e for e in http.get("/v1/engines", headers=admin).json()}
    assert engines["piper"]["status"] == "up" and engines["piper"]["live_workers"] >= 1
    assert engines["ghost"]["status"] == "no live worker"
    assert engines["xtts"]["cloning"] and "de" in engines["xtts"]["languages"]
    assert engines["piper"]["mean_synthesis_seconds"] > 0


def test_cache_stats_and_clearing(http: httpx.Client, admin_key: str) -> None:
    admin = {"X-API-Key": admin_key}
    job = wait_final(http, http.post("/v1/jobs", json={"text": "Clear me out."}).json()["id"])
    before = http.get("/v1/cache/stats", headers=admin).json()
    assert before["renditions"] >= 1 and before["redis_keys"] >= 1 and before["audio_seconds"] > 0
    assert http.post("/v1/jobs", json={"text": "Clear me out."}).json()["cache"] == "hit"
    assert http.delete("/v1/cache", headers=admin).json()["deleted"] == before["renditions"]
    after = http.get("/v1/cache/stats", headers=admin).json()
    assert after["renditions"] == 0 and after["redis_keys"] == 0
    assert http.get(f"/v1/jobs/{job['id']}").json()["audio_url"] is None
    gone = http.get(f"/v1/jobs/{job['id']}/audio")
    assert gone.status_code == 409 and gone.json()["error"].endswith("its audio has since been deleted"), gone.text
    assert http.post("/v1/jobs", json={"text": "Clear me out."}).status_code == 202  # synthesized anew


def test_flower_requires_authentication(farm) -> None:
    port = free_port()
    env = {**os.environ, "VOICEFARM_FLOWER_BASIC_AUTH": "ops:s3cret"}
    assert subprocess.run(["voicefarm", "flower"], env={**os.environ}, capture_output=True).returncode == 1
    proc = subprocess.Popen(
        ["voicefarm", "flower", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(url)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "flower did not start"
                time.sleep(0.3)
        assert r.status_code == 401
        assert httpx.get(f"{url}/workers", auth=("ops", "wrong")).status_code == 401
        assert httpx.get(f"{url}/workers", auth=("ops", "s3cret")).status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)
