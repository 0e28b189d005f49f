"""What the API decides by itself, in process: what it records and enqueues for a valid job, who
may see it, and how each error of the farm's tree becomes an HTTP status and a message."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from voicefarm.settings import get_settings
from voicefarm.store import db
from voicefarm.store.models import Batch, Job, JobStatus, utcnow
from voicefarm.telemetry import stats
from voicefarm.tenancy.auth import create_key


def queued() -> int:
    return stats.queue_depths(get_settings())["piper"]


def test_a_valid_job_is_recorded_and_enqueued_once(http: TestClient, app: TestClient) -> None:
    before = queued()
    r = http.post("/v1/jobs", json={"text": "Recorded, then enqueued.", "format": "mp3"})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] == "queued" and job["engine"] == "piper" and job["format"] == "mp3"
    assert queued() == before + 1
    assert http.get(f"/v1/jobs/{job['id']}").json()["status"] == "queued"
    not_ready = http.get(f"/v1/jobs/{job['id']}/audio")
    assert (
        not_ready.status_code == 409
        and not_ready.json()["error"] == f"job {job['id']} is queued; its audio is not ready"
    )
    # The same request again follows the first: one synthesis, nothing more on the queue.
    again = http.post("/v1/jobs", json={"text": "Recorded, then enqueued.", "format": "mp3"}).json()
    assert again["id"] != job["id"] and queued() == before + 1

    with db.session() as s:
        stranger = create_key(s, "tenant-z", name="tests")
    other = app.get(f"/v1/jobs/{job['id']}", headers={"X-API-Key": stranger})
    assert other.status_code == 404 and other.json()["error"] == f"no job {job['id']!r}"


def test_admin_endpoints_need_an_admin_key(http: TestClient, app: TestClient, admin_key: str) -> None:
    refused = http.get("/v1/engines")
    assert refused.status_code == 403 and refused.json()["error"] == "this endpoint needs an admin API key"
    engines = {e["name"]: e for e in app.get("/v1/engines", headers={"X-API-Key": admin_key}).json()}
    assert engines["piper"]["status"] == "up" and engines["piper"]["live_workers"] == 1
    assert engines["piper"]["degraded_until"] is None and engines["piper"]["self_test_failures"] == {}


def test_uploads_are_refused_with_their_reason_and_status(http: TestClient) -> None:
    form = {"name": "Narrator", "language": "en", "consent": "true"}
    unreadable = http.post("/v1/voices", data=form, files={"file": ("a.wav", b"RIFF not really a wave", "audio/wav")})
    assert unreadable.status_code == 415, unreadable.text
    message = unreadable.json()["error"]
    assert message.startswith("not a readable audio file") and "object at 0x" not in message
    big = b"\0" * (get_settings().voice_max_upload_bytes + 1)
    too_large = http.post("/v1/voices", data=form, files={"file": ("a.wav", big, "audio/wav")})
    assert too_large.status_code == 413 and "larger than the limit" in too_large.json()["error"]
    no_consent = http.post(
        "/v1/voices", data={**form, "consent": "false"}, files={"file": ("a.wav", b"x", "audio/wav")}
    )
    assert no_consent.status_code == 422 and no_consent.json()["error"].startswith("consent must be true")
    assert http.get("/v1/voices/nobody").status_code == 404


def test_callbacks_into_the_farms_network_are_refused_and_nothing_is_kept(http: TestClient) -> None:
    before = queued()
    for url, kind in [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://2130706433:8000/", "loopback"),
    ]:
        job = http.post("/v1/jobs", json={"text": "Call the inside.", "callback_url": url})
        assert job.status_code == 422 and f"a {kind} address" in job.json()["error"], job.text
        batch = http.post("/v1/batches", json={"phrases": ["Call the inside."], "callback_url": url})
        assert batch.status_code == 422 and f"a {kind} address" in batch.json()["error"], batch.text
    assert queued() == before
    with db.session() as s:
        assert s.scalar(select(func.count(Job.id)).where(Job.text == "Call the inside.")) == 0
        assert s.scalar(select(func.count(Batch.id)).where(Batch.callback_url.is_not(None))) == 0


FAILURE = "every engine failed: piper: RuntimeError: no voice today"


def fail(job_id: str) -> None:
    """Record the job as its last engine's worker would: failed for good."""
    with db.session() as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(status=JobStatus.failed.value, error=FAILURE, finished_at=utcnow())
        )


# wav is relayed from the job's feed; flac, which cannot stream as it is made, only once stored.
@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_a_failed_jobs_stream_is_a_409_that_carries_its_error(http: TestClient, fmt: str) -> None:
    """The job's state is what the client asked about, not a fault of the server: no 5xx."""
    job_id = http.post("/v1/jobs", json={"text": f"Nobody will say this in {fmt}.", "format": fmt}).json()["id"]
    fail(job_id)
    r = http.get(f"/v1/jobs/{job_id}/stream")
    assert r.status_code == 409 and r.json() == {"error": f"job {job_id} failed: {FAILURE}"}, r.text
