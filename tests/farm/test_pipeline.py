"""The whole path on real servers: HTTP -> Redis queue -> Piper worker process -> S3 -> poll."""

from __future__ import annotations

import io
import re
import threading

import httpx
import jiwer
import soundfile as sf
from sqlalchemy import func, select

from tests.farm.conftest import wait_final
from voicefarm.store import db
from voicefarm.store.models import Attempt, Job

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


def words(text: str) -> str:
    return re.sub(r"[^a-z' ]", " ", text.lower()).strip()


def attempts_for(content_key: str) -> int:
    with db.session() as s:
        return s.scalar(select(func.count(Attempt.id)).join(Job).where(Job.content_key == content_key))


def test_submit_poll_fetch_is_intelligible_speech(http: httpx.Client, transcribe) -> None:
    r = http.post("/v1/jobs", json={"text": SENTENCE, "voice": "en_US-joe-medium", "quality": "fast"})
    assert r.status_code == 202, r.text
    submitted = r.json()
    assert submitted["status"] == "queued" and submitted["cache"] == "miss"
    assert submitted["poll_url"].endswith(f"/v1/jobs/{submitted['id']}")

    job = wait_final(http, submitted["id"])
    assert job["status"] == "succeeded", job
    assert job["engine"] == "piper" and job["sample_rate"] == 22050
    assert [a["outcome"] for a in job["attempts"]] == ["succeeded"]
    assert job["timings"]["queued"] <= job["timings"]["started"] <= job["timings"]["finished"]

    # S3 store: the API redirects to a presigned URL on the S3 server.
    redirect = http.get(f"/v1/jobs/{job['id']}/audio")
    assert redirect.status_code == 307 and "X-Amz-Signature" in redirect.headers["location"]
    audio = httpx.get(redirect.headers["location"]).content
    samples, rate = sf.read(io.BytesIO(audio))
    assert rate == 22050 and abs(len(samples) / rate - job["duration"]) < 0.01

    heard = transcribe(audio)
    error = jiwer.wer(words(SENTENCE), words(heard))
    assert error <= 0.15, f"WER {error:.2f}: heard {heard!r}"


def test_identical_request_is_a_cache_hit_without_synthesis(http: httpx.Client) -> None:
    body = {"text": "Cache me if you can.", "format": "flac"}
    first = wait_final(http, http.post("/v1/jobs", json=body).json()["id"])
    assert first["status"] == "succeeded"
    assert attempts_for(first["content_key"]) == 1

    # Whitespace is normalised: the same request in other spacing is the same audio.
    again = http.post("/v1/jobs", json={**body, "text": "  Cache me   if you can. "})
    assert again.status_code == 200, again.text
    hit = again.json()
    assert hit["cache"] == "hit" and hit["status"] == "succeeded" and hit["id"] is None
    assert hit["audio_url"] == first["audio_url"] and hit["content_key"] == first["content_key"]
    assert attempts_for(first["content_key"]) == 1
    fetched = http.get(hit["audio_url"], follow_redirects=True)
    assert fetched.status_code == 200 and sf.info(io.BytesIO(fetched.content)).format == "FLAC"


def test_other_speed_is_new_speech_other_format_a_new_file(http: httpx.Client) -> None:
    base = {"text": "Formats and speeds make different audio."}
    first = wait_final(http, http.post("/v1/jobs", json=base).json()["id"])
    slower = wait_final(http, http.post("/v1/jobs", json={**base, "speed": 0.8}).json()["id"])
    assert first["status"] == slower["status"] == "succeeded" and slower["duration"] > first["duration"]
    mp3 = http.post("/v1/jobs", json={**base, "format": "mp3"}).json()  # converted, not synthesized
    assert mp3["cache"] == "hit" and len({first["content_key"], slower["content_key"], mp3["content_key"]}) == 3


def test_identical_requests_in_flight_share_one_synthesis(http: httpx.Client, other_key: str) -> None:
    body = {"text": "Two callers asked for this at the same moment, and then a third."}
    barrier = threading.Barrier(3)
    results: list[httpx.Response] = []

    def post(key: str) -> None:
        with httpx.Client(base_url=str(http.base_url), headers={"X-API-Key": key}) as c:
            barrier.wait()
            results.append(c.post("/v1/jobs", json=body))

    threads = [threading.Thread(target=post, args=(k,)) for k in (http.headers["X-API-Key"],) * 2 + (other_key,)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results) == [202, 202, 202], [r.text for r in results]
    ids = [r.json()["id"] for r in results]
    assert len(set(ids)) == 3  # each caller has its own job...
    with db.session() as s:
        jobs = s.scalars(select(Job).where(Job.id.in_(ids))).all()
        assert sum(j.leader_id is None for j in jobs) == 1  # ...but only one synthesis runs
    for r in results:
        key = r.request.headers["X-API-Key"]
        with httpx.Client(base_url=str(http.base_url), headers={"X-API-Key": key}) as c:
            assert wait_final(c, r.json()["id"])["status"] == "succeeded"
    assert attempts_for(results[0].json()["content_key"]) == 1


def test_tenants_cannot_see_each_others_jobs(http: httpx.Client, other_key: str) -> None:
    job = http.post("/v1/jobs", json={"text": "Private to tenant a."}).json()
    with httpx.Client(base_url=str(http.base_url), headers={"X-API-Key": other_key}) as other:
        assert other.get(f"/v1/jobs/{job['id']}").status_code == 404
        assert other.get(f"/v1/jobs/{job['id']}/audio").status_code == 404
    wait_final(http, job["id"])


def test_voices_and_health(http: httpx.Client) -> None:
    voices = http.get("/v1/voices").json()
    assert {"id": "en_US-joe-medium", "language": "en-US", "engine": "piper"}.items() <= voices[0].items()
    health = http.get("/healthz")
    assert health.status_code == 200
    checks = health.json()["checks"]
    assert set(checks) == {"broker", "database", "store", "cache"}
    assert all(c["ok"] for c in checks.values()) and checks["store"]["detail"] == "S3Store"


def test_openapi_is_served(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/audio", "/v1/voices", "/healthz"} <= set(spec["paths"])
    assert http.get("/docs").status_code == 200


def test_say_writes_the_audio(farm, api_key: str, tmp_path) -> None:
    import os
    import subprocess

    env = {**os.environ, "VOICEFARM_URL": farm.url, "VOICEFARM_API_KEY": api_key}
    out = tmp_path / "hello.flac"
    done = subprocess.run(
        ["voicefarm", "say", "Hello from the command line.", "-o", str(out), "--quality", "fast"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "from piper" in done.stdout and sf.info(str(out)).format == "FLAC"
    bad = subprocess.run(["voicefarm", "say", "  ", "-o", str(out)], env=env, capture_output=True, text=True)
    assert bad.returncode == 1 and "text is empty" in bad.stdout
