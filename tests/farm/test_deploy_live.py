"""The deployment files' checks that need the test farm: the alert rules and the dashboard name
only metrics the farm serves (the API's /metrics, and the workers' and the reconciler's), and
the images' helper scripts work against it."""

from __future__ import annotations

import os
import re
import sys
import uuid

import httpx
import pytest

from tests.deploy.test_deploy import alert_rules, dashboard_exprs, metric_names, run
from tests.farm.conftest import wait_final


def served(url: str) -> set[str]:
    """Sample names a /metrics page serves, from its # TYPE lines."""
    text = httpx.get(url, timeout=30).raise_for_status().text
    suffixes = {"histogram": ["_bucket", "_sum", "_count"], "summary": ["", "_sum", "_count"]}
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        if kind == "counter":  # the TYPE line names a counter with or without its _total
            name = name.removesuffix("_total") + "_total"
        names |= {name + s for s in suffixes.get(kind, [""])}
    return names


@pytest.fixture(scope="module")
def exposed_metrics(farm, api_key: str) -> set[str]:
    """What the API and every worker serve, once a job has gone through (a worker's per-tenant
    character count has no series before its first job)."""
    with httpx.Client(base_url=farm.url, headers={"X-API-Key": api_key}, timeout=30) as http:
        wait_final(http, http.post("/v1/jobs", json={"text": "Count me in."}).json()["id"])
    api = served(f"{farm.url}/metrics")
    assert {"voicefarm_queue_depth", "voicefarm_live_workers", "voicefarm_jobs"} <= api
    workers = set().union(*map(served, farm.metrics.values()))
    assert {"voicefarm_attempts_total", "voicefarm_tts_characters_total"} <= workers
    return api | workers


def test_alerts_and_dashboard_name_only_served_metrics(exposed_metrics: set[str]) -> None:
    used = set().union(*map(metric_names, [r["expr"] for r in alert_rules()] + dashboard_exprs()))
    assert used - exposed_metrics == set(), f"served by no process of the farm: {sorted(used - exposed_metrics)}"


def test_healthchecks_pass_against_the_test_farm(farm) -> None:
    for role in ("api", "worker"):  # the test farm's workers run on this host, as in a container
        result = run(sys.executable, "docker/healthcheck.py", role, timeout=60)
        assert result.returncode == 0, f"{role}: {result.stdout}{result.stderr}"
    result = run(
        sys.executable, "docker/healthcheck.py", "api", timeout=60, env={**os.environ, "VOICEFARM_API_PORT": "9"}
    )  # nothing listens there
    assert result.returncode != 0 and "api unhealthy" in result.stderr


def test_ensure_bucket_creates_a_missing_bucket() -> None:
    env = {**os.environ, "VOICEFARM_STORAGE_URL": f"s3://bucket-{uuid.uuid4().hex[:12]}"}
    first = run(sys.executable, "docker/ensure-bucket.py", env=env, timeout=60)
    assert first.returncode == 0 and "created" in first.stdout, first.stdout + first.stderr
    again = run(sys.executable, "docker/ensure-bucket.py", env=env, timeout=60)
    assert again.returncode == 0 and "exists" in again.stdout, again.stdout + again.stderr
