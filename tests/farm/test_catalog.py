"""The API's catalog comes from what workers advertise: an API with no engine code and no model
files routes to the engines its workers run, keeps an engine's last known voices while it has
no live worker, and shows why a worker could not start."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import delete

from tests.farm.conftest import LOGS, ROOT, _wait, free_port, wait_final
from tests.farm.test_voices import encode, upload
from voicefarm.store import db
from voicefarm.store.models import EngineCapabilities, Worker, utcnow

CATALOG_TTL = 2.0  # how long the API remembers the catalog (voicefarm.fleet.catalog.Catalogs)


@pytest.fixture(scope="module")
def bare_api(farm) -> Iterator[str]:
    """A second API process as an API pod runs: the core environment only, no model directory,
    no plugin engines."""
    assert importlib.util.find_spec("voicefarm_xtts") is None, "the core environment must not carry engine code"
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("VOICEFARM_XTTS_", "VOICEFARM_STYLETTS2_")) and name != "VOICEFARM_PLUGINS"
    }
    env["VOICEFARM_API_PORT"] = str(free_port())
    url = f"http://127.0.0.1:{env['VOICEFARM_API_PORT']}"
    with open(LOGS / "bare-api.log", "ab") as log:
        api = subprocess.Popen(
            [sys.executable, "-m", "voicefarm", "api"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait("the bare API", lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200)
        yield url
    finally:
        api.terminate()
        api.wait(20)


def test_an_api_without_engine_code_or_models_routes_a_cloned_voice_to_xtts(
    bare_api, api_key, admin_key, speech
) -> None:
    with httpx.Client(base_url=bare_api, headers={"X-API-Key": api_key}, timeout=30) as http:
        engines = {e["name"]: e for e in http.get("/v1/engines", headers={"X-API-Key": admin_key}).json()}
        xtts = engines["xtts"]
        assert xtts["status"] == "up" and xtts["cloning"] and xtts["device"] in ("cpu", "cuda")
        assert {"en", "de", "ja"} <= set(xtts["languages"]) and xtts["model_version"].startswith("xtts-v2-")
        voices = {v["id"]: v for v in http.get("/v1/voices").json()}
        assert voices["styletts2-default"]["engine"] == "styletts2" and voices["styletts2-default"]["available"]

        vid = upload(http, encode(*speech)).json()["id"]
        submitted = http.post("/v1/jobs", json={"text": "Cloned through a bare API.", "voice": vid, "quality": "high"})
        assert submitted.status_code == 202, submitted.text
        job = wait_final(http, submitted.json()["id"], timeout=180)
        assert job["status"] == "succeeded" and job["engine"] == "xtts" and job["spoken_voice"] == vid, job
        assert http.delete(f"/v1/voices/{vid}").status_code == 204


def test_an_engine_without_a_live_worker_keeps_its_last_known_voices(http: httpx.Client, admin_key: str) -> None:
    voice = {"id": "retired-voice", "language": "en-GB", "name": "Retired", "sample_rate": 16000, "version": "7"}
    caps = {
        "languages": ["en"],
        "voices": [voice],
        "cloning": False,
        "device": "cpu",
        "model_version": "retired-3",
        "unavailable": None,
    }
    with db.session() as s:
        s.add(EngineCapabilities(engine="retired", capabilities=caps, updated_at=utcnow()))
    try:
        time.sleep(CATALOG_TTL + 0.2)
        voices = http.get("/v1/voices").json()
        listed = {v["id"]: v for v in voices}
        assert listed["retired-voice"] == {
            **listed["retired-voice"],
            "engine": "retired",
            "available": False,
            "language": "en-GB",
            "sample_rate": 16000,
        }
        # Piper's voice, which the fault engines claim too (some of their workers come and go).
        assert [v["available"] for v in voices if (v["id"], v["engine"]) == ("en_US-joe-medium", "piper")] == [True]
        assert http.get("/v1/voices/retired-voice").json()["available"] is False
        retired = {e["name"]: e for e in http.get("/v1/engines", headers={"X-API-Key": admin_key}).json()}["retired"]
        assert retired["status"] == "no live worker" and retired["model_version"] == "retired-3"
        assert retired["languages"] == ["en"] and retired["live_workers"] == 0
    finally:
        with db.session() as s:
            s.execute(delete(EngineCapabilities).where(EngineCapabilities.engine == "retired"))


def test_a_worker_whose_engine_is_unavailable_says_why(http: httpx.Client, admin_key: str, tmp_path) -> None:
    missing = tmp_path / "no-such-key.json"
    env = {
        **os.environ,
        "VOICEFARM_PLUGINS": '{"nocreds": "voicefarm.engines.google:from_settings"}',
        "VOICEFARM_GOOGLE_CREDENTIALS_FILE": str(missing),
    }
    result = subprocess.run(
        [sys.executable, "-m", "voicefarm", "worker", "--engine", "nocreds"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    try:
        assert result.returncode == 1, result.stdout + result.stderr
        assert "celery@" not in result.stdout + result.stderr
        nocreds = {e["name"]: e for e in http.get("/v1/engines", headers={"X-API-Key": admin_key}).json()}["nocreds"]
        assert nocreds["status"] == f"unavailable: google_credentials_file {missing} does not exist"
        assert nocreds["live_workers"] == 0 and list(nocreds["self_test_failures"].values()) == [nocreds["status"]]
    finally:
        with db.session() as s:
            s.execute(delete(Worker).where(Worker.engine == "nocreds"))
