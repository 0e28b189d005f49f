"""Batches for pre-generation, priority for interactive jobs, and signed callbacks."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from sqlalchemy import func, select

from tests.farm.conftest import wait_final
from voicefarm.client import verify_signature
from voicefarm.store import db
from voicefarm.store.models import Attempt, Job


def wait_batch(http: httpx.Client, batch_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = http.get(f"/v1/batches/{batch_id}").json()
        if batch["status"] == "done":
            return batch
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} not done: {batch}")


def synthesized(texts: list[str]) -> int:
    with db.session() as s:
        return s.scalar(select(func.count(Attempt.id)).join(Job).where(Job.text.in_(texts)))


def test_phrases_times_voices_with_duplicates_and_cached_items(http: httpx.Client, other_key: str) -> None:
    cached = "Already said once before the batch."
    wait_final(http, http.post("/v1/jobs", json={"text": cached}).json()["id"])
    phrases = ["Welcome to the help line.", "Please hold.", "Please hold.", cached]
    r = http.post("/v1/batches", json={"phrases": phrases, "voices": ["en_US-joe-medium"], "format": "wav"})
    assert r.status_code == 202, r.text
    batch = wait_batch(http, r.json()["id"])
    assert batch["total"] == 4 and batch["counts"]["succeeded"] == 4 and batch["progress"] == 1
    assert [(item["index"], item["text"]) for item in batch["manifest"]] == list(enumerate(phrases))
    assert all(item["audio_url"] for item in batch["manifest"])
    assert synthesized(["Please hold."]) == 1  # the duplicate shared one synthesis
    assert synthesized([cached]) == 1  # the cached item needed none
    with httpx.Client(base_url=str(http.base_url), headers={"X-API-Key": other_key}) as other:
        assert other.get(f"/v1/batches/{batch['id']}").status_code == 404


@pytest.mark.fault_injection
def test_failed_items_are_listed_and_a_bad_item_refuses_the_batch(http: httpx.Client) -> None:
    items = [{"text": "This one works."}, {"text": "This one cannot.", "quality": "hopeless"}]
    batch = wait_batch(http, http.post("/v1/batches", json={"items": items}).json()["id"])
    assert batch["counts"] == {"queued": 0, "running": 0, "succeeded": 1, "failed": 1, "canceled": 0}
    assert batch["failed"][0]["index"] == 1 and "every engine failed" in batch["failed"][0]["error"]
    with db.session() as s:
        before = s.scalar(select(func.count(Job.id)))
    r = http.post("/v1/batches", json={"items": [{"text": "fine"}, {"text": "  "}]})
    assert r.status_code == 422 and r.json()["error"] == "item 1: text is empty"
    r = http.post("/v1/batches", json={"phrases": ["a"], "items": [{"text": "b"}]})
    assert r.status_code == 422
    with db.session() as s:
        assert s.scalar(select(func.count(Job.id))) == before


def batch_started(batch_id: str) -> bool:
    with db.session() as s:
        return s.scalar(select(func.count(Job.id)).where(Job.batch_id == batch_id, Job.started_at.is_not(None))) > 0


def test_an_interactive_job_does_not_wait_for_a_batch_to_drain(http: httpx.Client) -> None:
    phrases = [f"Batch phrase number {i} for the priority test." for i in range(30)]
    batch_id = http.post("/v1/batches", json={"phrases": phrases}).json()["id"]
    deadline = time.monotonic() + 30
    while not batch_started(batch_id):  # the interactive job arrives with the batch under way
        assert time.monotonic() < deadline, "no job of the batch started"
        time.sleep(0.05)
    interactive = wait_final(http, http.post("/v1/jobs", json={"text": "I am in a hurry."}).json()["id"])
    batch = wait_batch(http, batch_id)
    with db.session() as s:
        batch_starts = sorted(s.scalars(select(Job.started_at).where(Job.batch_id == batch_id)))
    queued, started = (datetime.fromisoformat(interactive["timings"][k]) for k in ("queued", "started"))
    # It went ahead of the rest of the batch: once it was queued, at most the job in hand and
    # one prefetched started first.
    ahead = [t for t in batch_starts if queued < t < started]
    assert len(ahead) <= 2, (queued, started, ahead)
    assert batch["counts"]["succeeded"] == 30


class Receiver:
    """A local callback receiver that fails its first `failures` deliveries."""

    def __init__(self, failures: int = 0) -> None:
        self.failures, self.received = failures, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((body, self.headers["X-Voicefarm-Signature"]))
                self.send_response(500 if len(outer.received) <= outer.failures else 204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} of {count} callbacks"
            time.sleep(0.1)


@pytest.fixture
def secret(http: httpx.Client) -> str:
    return http.get("/v1/tenant").json()["webhook_secret"]


def test_job_callback_is_signed_and_retried(http: httpx.Client, secret: str) -> None:
    receiver = Receiver(failures=2)
    job = http.post("/v1/jobs", json={"text": "Call me back.", "callback_url": receiver.url}).json()
    receiver.wait(3)  # two refusals, then delivered
    body, header = receiver.received[-1]
    assert verify_signature(secret, body, header)
    assert not verify_signature("whsec_wrong", body, header)
    sent = json.loads(body)
    assert sent["event"] == "job.finished" and sent["job"]["id"] == job["id"] and sent["job"]["status"] == "succeeded"
    receiver.server.shutdown()


def test_batch_callback(http: httpx.Client, secret: str) -> None:
    receiver = Receiver()
    batch = http.post(
        "/v1/batches", json={"phrases": ["One for the hook.", "Two for the hook."], "callback_url": receiver.url}
    ).json()
    receiver.wait(1)
    body, header = receiver.received[0]
    assert verify_signature(secret, body, header)
    sent = json.loads(body)
    assert sent["event"] == "batch.finished" and sent["batch"]["id"] == batch["id"]
    assert sent["batch"]["counts"]["succeeded"] == 2 and len(sent["batch"]["manifest"]) == 2
    receiver.server.shutdown()


def test_callback_url_must_be_http(http: httpx.Client) -> None:
    r = http.post("/v1/jobs", json={"text": "hi", "callback_url": "ftp://example/hook"})
    assert r.status_code == 422 and "callback_url" in r.json()["error"]


def test_pregen_writes_a_manifest_and_a_rerun_redoes_nothing(farm, api_key: str, tmp_path) -> None:
    import csv
    import os
    import subprocess

    phrases = tmp_path / "phrases.txt"
    lines = ["Good morning and welcome.", "", "Your call is important to us.", "Goodbye for now."]
    phrases.write_text("\n".join(lines))
    env = {**os.environ, "VOICEFARM_URL": farm.url, "VOICEFARM_API_KEY": api_key}
    command = [
        "voicefarm",
        "pregen",
        str(phrases),
        "--voice",
        "en_US-joe-medium",
        "--format",
        "mp3",
        "--manifest",
        str(tmp_path / "manifest.csv"),
    ]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "3 succeeded, 0 failed" in first.stdout
    rows = list(csv.DictReader((tmp_path / "manifest.csv").open()))
    assert [r["text"] for r in rows] == [line for line in lines if line] and all(r["url"] for r in rows)
    before = synthesized([line for line in lines if line])
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0 and "3 succeeded" in again.stdout
    assert synthesized([line for line in lines if line]) == before == 3
