"""What the browser console needs of the API: its static files without a key, the farm's
configuration it draws with, and the tenant's latest jobs and batches, a voice's sample and
the last hour's rates, each with a key."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from voicefarm.settings import get_settings
from voicefarm.store import db
from voicefarm.store.models import Attempt, Job, utcnow
from voicefarm.tenancy.auth import create_key


def test_the_console_is_served_without_a_key_and_its_data_calls_need_one(app: TestClient) -> None:
    root = app.get("/console", follow_redirects=False)
    assert root.status_code == 308 and root.headers["location"] == "/console/"
    page = app.get("/console/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="app.js">' in page.text
    script = app.get("/console/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert app.get("/console/nothing.js").status_code == 404
    refused = app.get("/v1/jobs")
    assert refused.status_code == 401 and refused.json()["error"].startswith("missing API key")


def test_the_console_config_carries_the_farms_limits_and_grafana() -> None:
    settings = get_settings()
    from voicefarm.api.app import create_app

    config = TestClient(create_app(settings)).get("/console/config.json").json()
    assert config["grafana_dashboard"] == f"{settings.grafana_url}/d/voicefarm-overview/voicefarm"
    assert config["voice_limits"]["min_snr_db"] == settings.voice_min_snr_db
    assert config["voice_limits"]["max_seconds"] == settings.voice_max_seconds
    assert config["tiers"] == list(settings.tiers) and "mp3" in config["formats"]


def test_recent_jobs_are_the_tenants_own_newest_first(http: TestClient, app: TestClient) -> None:
    ids = [http.post("/v1/jobs", json={"text": f"Listed job {n}."}).json()["id"] for n in range(3)]
    listed = http.get("/v1/jobs", params={"limit": 2})
    assert listed.status_code == 200, listed.text
    assert [j["id"] for j in listed.json()] == ids[::-1][:2]
    assert listed.json()[0]["timings"]["queued"] is not None and listed.json()[0]["attempts"] == []
    with db.session() as s:
        stranger = create_key(s, "tenant-list", name="tests")
    assert app.get("/v1/jobs", headers={"X-API-Key": stranger}).json() == []


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/batches"])
@pytest.mark.parametrize("limit", ["0", "101", "many"])
def test_a_list_limit_out_of_range_is_refused_by_name(http: TestClient, path: str, limit: str) -> None:
    r = http.get(path, params={"limit": limit})
    assert r.status_code == 422 and r.json()["error"].startswith("query.limit: ")


def test_recent_batches_carry_their_counts(http: TestClient) -> None:
    batch = http.post("/v1/batches", json={"phrases": ["Batch one.", "Batch two."]}).json()
    listed = http.get("/v1/batches").json()
    assert listed[0]["id"] == batch["id"] and listed[0]["total"] == 2
    assert listed[0]["counts"] == {"queued": 2, "running": 0, "succeeded": 0, "failed": 0, "canceled": 0}
    assert listed[0]["status"] == "running" and listed[0]["progress"] == 0


def test_a_built_in_voice_has_no_sample_to_play(http: TestClient) -> None:
    r = http.get("/v1/voices/en_US-joe-medium/sample")
    assert r.status_code == 404
    assert r.json()["error"] == "'en_US-joe-medium' is a built-in voice: it has no uploaded sample"
    missing = http.get("/v1/voices/nobody/sample")
    assert missing.status_code == 404 and missing.json()["error"] == "no voice 'nobody'"


def test_rates_count_the_last_hours_attempts_fallbacks_and_failed_jobs(
    http: TestClient, app: TestClient, admin_key: str
) -> None:
    assert http.get("/v1/rates").json()["error"] == "this endpoint needs an admin API key"
    job_id = http.post("/v1/jobs", json={"text": "A job whose attempts are counted."}).json()["id"]
    now = utcnow()
    with db.session() as s:
        before = app.get("/v1/rates", headers={"X-API-Key": admin_key}).json()
        s.add_all(
            [
                # One failed and moved on, one lost, one succeeded: and one from two hours ago, not counted.
                Attempt(job_id=job_id, engine="piper", outcome="failed", rerouted_to="google", finished_at=now),
                Attempt(job_id=job_id, engine="piper", outcome="lost", finished_at=now),
                Attempt(job_id=job_id, engine="piper", outcome="succeeded", finished_at=now),
                Attempt(job_id=job_id, engine="piper", outcome="failed", finished_at=now - timedelta(hours=2)),
            ]
        )
        job = s.get(Job, job_id)
        assert job is not None
        job.status, job.finished_at = "failed", now
        s.commit()
    rates = app.get("/v1/rates", headers={"X-API-Key": admin_key}).json()
    assert rates["window_seconds"] == 3600
    was = before["engines"].get("piper", {"attempts": 0, "failed": 0, "fallbacks": 0})
    assert rates["engines"]["piper"] == {
        "attempts": was["attempts"] + 3,
        "failed": was["failed"] + 2,
        "fallbacks": was["fallbacks"] + 1,
    }
    assert rates["jobs_failed"] == before["jobs_failed"] + 1
    assert rates["jobs_finished"] == before["jobs_finished"] + 1
