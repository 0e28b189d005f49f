"""An engine that cannot synthesize shows: its worker refuses to start, or its breaker takes it
out of the chains until it works again. Neither hides behind a fallback."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete

from tests.farm.conftest import ROOT, wait_final
from tests.fault_engines import FLAPPING_FLAG
from voicefarm.store import db
from voicefarm.store.models import Worker

pytestmark = pytest.mark.fault_injection


def metric(farm, name: str, engine: str) -> float:
    text = httpx.get(f"{farm.url}/metrics").text
    return next(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == name and s.labels.get("engine") == engine
    )


def engines(http: httpx.Client, admin_key: str) -> dict[str, dict]:
    return {e["name"]: e for e in http.get("/v1/engines", headers={"X-API-Key": admin_key}).json()}


def start_worker(engine: str, python: str = "python", **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [python, "-m", "voicefarm", "worker", "--engine", engine],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env={**os.environ, **env},
    )


def forget_self_test_failures(engine: str) -> None:
    with db.session() as s:
        s.execute(delete(Worker).where(Worker.engine == engine, Worker.self_test.is_not(None)))


def test_a_worker_whose_engine_fails_its_self_test_exits_and_takes_no_job(farm, http, admin_key) -> None:
    result = start_worker("dud")
    try:
        assert result.returncode == 1, result.stdout + result.stderr
        assert (
            "engine dud failed its self-test; this worker takes no jobs: RuntimeError: dud: this model cannot speak"
            in result.stderr.splitlines()
        )
        assert "celery@" not in result.stdout + result.stderr  # Celery never started: no queue consumed
        dud = engines(http, admin_key)["dud"]
        assert dud["status"] == "failed self-test: RuntimeError: dud: this model cannot speak"
        assert dud["live_workers"] == 0 and list(dud["self_test_failures"].values()) == [dud["status"]]
        assert metric(farm, "voicefarm_engine_self_test_failed", "dud") == 1
    finally:
        forget_self_test_failures("dud")


def test_a_corrupted_xtts_checkpoint_fails_the_self_test(farm, http, admin_key, tmp_path: Path) -> None:
    """Weights that load but make nothing usable: every parameter NaN. The worker must say so
    and exit, not heartbeat and fail every cloned voice's job."""
    model = tmp_path / "xtts-corrupt"
    shutil.copytree(os.environ["VOICEFARM_XTTS_MODEL_DIR"], model)  # the farm's own, corrupted below
    python = str(ROOT / "workers" / "xtts" / ".venv" / "bin" / "python")
    subprocess.run(
        [
            python,
            "-c",
            (
                "import sys, torch; p = sys.argv[1]; ckpt = torch.load(p, weights_only=True); "
                "ckpt['model'] = {k: v.float().fill_(float('nan')) if v.is_floating_point() else v "
                "for k, v in ckpt['model'].items()}; torch.save(ckpt, p)"
            ),
            str(model / "model.pth"),
        ],
        check=True,
    )
    result = start_worker("xtts", python, VOICEFARM_XTTS_MODEL_DIR=str(model), HF_HUB_OFFLINE="1")
    try:
        assert result.returncode == 1, result.stdout + result.stderr
        [line] = [line for line in result.stderr.splitlines() if line.startswith("engine xtts failed its self-test; ")]
        xtts = engines(http, admin_key)["xtts"]
        [reason] = xtts["self_test_failures"].values()
        assert reason == "failed self-test: " + line.split("takes no jobs: ", 1)[1]
        assert xtts["status"] == "up" and xtts["live_workers"] >= 1  # the farm's healthy XTTS worker still serves
    finally:
        forget_self_test_failures("xtts")


def submit(http: httpx.Client, text: str) -> str:
    return http.post("/v1/jobs", json={"text": text, "quality": "flappy"}).json()["id"]


def outcomes(job: dict) -> list[tuple[str, str]]:
    return [(a["engine"], a["outcome"]) for a in job["attempts"]]


def wait_degraded(http, admin_key, want: bool, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        flapping = engines(http, admin_key)["flapping"]
        if (flapping["degraded_until"] is not None) == want:
            return flapping
        time.sleep(0.1)
    raise AssertionError(f"flapping: degraded is not {want}: {flapping}")


def until(engine: dict) -> float:
    return datetime.fromisoformat(engine["degraded_until"]).replace(tzinfo=UTC).timestamp()


def test_the_breaker_takes_a_failing_engine_out_and_brings_it_back(farm, http, admin_key) -> None:
    flag = Path(os.environ[FLAPPING_FLAG])
    flag.touch()
    try:
        for i in range(5):  # VOICEFARM_BREAKER_FAILURES' default: five in a row
            job = wait_final(http, submit(http, f"Flapping, take {i}."))
            assert job["status"] == "succeeded" and outcomes(job) == [("flapping", "failed"), ("piper", "succeeded")]
        flapping = wait_degraded(http, admin_key, True)
        assert flapping["status"] == "degraded: RuntimeError: flapping: down for now"
        assert metric(farm, "voicefarm_engine_degraded", "flapping") == 1
        assert metric(farm, "voicefarm_engine_degraded", "piper") == 0

        time.sleep(2.2)  # the API's view of live engines and breakers is at most 2 s old
        assert time.time() < until(flapping), "the cool-down ended before the skip could be seen"
        job = wait_final(http, submit(http, "Skipped while degraded."))
        assert outcomes(job) == [("piper", "succeeded")]

        # After the cool-down, exactly one job probes the engine; it fails again and reopens.
        time.sleep(max(0.0, until(flapping) - time.time()) + 0.3)
        probes = [wait_final(http, job_id) for job_id in [submit(http, "Probe one."), submit(http, "Probe two.")]]
        assert sorted(map(outcomes, probes)) == [
            [("flapping", "failed"), ("piper", "succeeded")],
            [("piper", "succeeded")],
        ]
        flapping = wait_degraded(http, admin_key, True)

        flag.unlink()  # the engine recovers: the next probe succeeds and closes the breaker
        time.sleep(max(0.0, until(flapping) - time.time()) + 0.3)
        job = wait_final(http, submit(http, "Back again."))
        assert outcomes(job) == [("flapping", "succeeded")]
        flapping = wait_degraded(http, admin_key, False)
        assert flapping["status"] == "up"
        assert metric(farm, "voicefarm_engine_degraded", "flapping") == 0
    finally:
        flag.unlink(missing_ok=True)
