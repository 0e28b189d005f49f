"""Word timestamps through the whole farm: Piper's audio aligned by the aligner worker, an
engine's own alignments kept as they are, alignments shared by every job of the same speech,
captions, the SDK and the CLI."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import webvtt

from tests.farm.conftest import more_workers, wait_final
from voicefarm.client import AsyncClient, Client, NotFound
from voicefarm.ops.supervisor import Farm
from voicefarm.store import db
from voicefarm.store.models import Alignment, Job

TEXT = "Captions need times. The aligner hears each word, then writes them down!"


def timestamps(http: httpx.Client, job_id: str, timeout: float = 60.0) -> dict:
    """The job's timestamps once aligned: 409 until then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = http.get(f"/v1/jobs/{job_id}/timestamps")
        if reply.status_code != 409:
            assert reply.status_code == 200, reply.text
            return reply.json()
        time.sleep(0.2)
    raise AssertionError(f"job {job_id}: no timestamps after {timeout} s: {reply.text}")


def assert_every_word_once(body: dict, text: str, duration: float) -> None:
    assert [w["text"] for w in body["words"]] == text.split()
    last = 0.0
    for w in body["words"]:
        assert last <= w["start"] <= w["end"] <= duration, (w, last, duration)
        last = w["end"]


def test_a_job_that_asks_is_aligned_and_captioned(http: httpx.Client) -> None:
    submitted = http.post("/v1/jobs", json={"text": TEXT, "timestamps": True})
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    assert job["timestamps_url"].endswith(f"/v1/jobs/{job['id']}/timestamps")
    early = http.get(f"/v1/jobs/{job['id']}/timestamps")
    assert early.status_code == 409 and job["id"] in early.json()["error"]

    job = wait_final(http, job["id"])
    assert job["status"] == "succeeded" and job["engine"] == "piper"
    body = timestamps(http, job["id"])
    assert body["source"] == "aligned"
    assert_every_word_once(body, TEXT, job["duration"])
    # The second sentence starts after the first one's pause, and the last word ends near the end.
    words = body["words"]
    assert words[3]["start"] - words[2]["end"] > 0.1
    assert words[-1]["end"] > job["duration"] - 0.5

    vtt = http.get(f"/v1/jobs/{job['id']}/captions.vtt")
    assert vtt.status_code == 200 and vtt.headers["content-type"].startswith("text/vtt")
    cues = list(webvtt.from_buffer(io.StringIO(vtt.text)))
    assert " ".join(c.text for c in cues) == TEXT
    assert cues[0].text == "Captions need times." and cues[0].start_in_seconds == int(words[0]["start"])
    srt = http.get(f"/v1/jobs/{job['id']}/captions.srt")
    assert srt.status_code == 200 and srt.headers["content-type"].startswith("application/x-subrip")
    assert srt.text.startswith("1\n00:00:0") and srt.text.count(" --> ") == len(cues)


def test_openai_events_carry_the_timestamps_before_the_done(oai: openai.OpenAI, http: httpx.Client) -> None:
    text = "Events carry the times too. Each word gets one."
    with oai.audio.speech.with_streaming_response.create(
        model="tts-1",
        voice="alloy",
        input=text,
        response_format="pcm",
        stream_format="sse",
        extra_body={"timestamps": True},
    ) as response:
        job_id = response.headers["x-voicefarm-job"]
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    assert [e["type"] for e in events[-2:]] == ["speech.timestamps", "speech.audio.done"]
    audio = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    timed = events[-2]
    assert timed["source"] == "aligned"
    assert_every_word_once(timed, text, len(audio) / 2 / 24000 + 0.01)  # OpenAI's pcm: 16-bit, 24 kHz
    assert timed["words"] == timestamps(http, job_id)["words"]  # the job's own, by the id in the header


def test_timestamps_not_asked_for_or_of_another_tenant_are_404(http: httpx.Client, farm: Farm, other_key: str) -> None:
    job = wait_final(http, http.post("/v1/jobs", json={"text": "Nobody asked for my timestamps."}).json()["id"])
    assert job["timestamps_url"] is None
    for path in ("timestamps", "captions.vtt", "captions.srt"):
        missing = http.get(f"/v1/jobs/{job['id']}/{path}")
        assert missing.status_code == 404 and '"timestamps": true' in missing.json()["error"]
    theirs = httpx.get(f"{farm.url}/v1/jobs/{job['id']}/timestamps", headers={"X-API-Key": other_key})
    assert theirs.status_code == 404 and theirs.json()["error"] == f"no job {job['id']!r}"


def test_the_same_speech_is_aligned_once_whatever_its_format(http: httpx.Client) -> None:
    text = "Aligned once, and reused by every job of the same speech."
    first = wait_final(http, http.post("/v1/jobs", json={"text": text, "timestamps": True}).json()["id"])
    aligned = timestamps(http, first["id"])
    with db.session() as s:
        source = s.get(Job, first["id"]).link.source
        made = s.get(Alignment, source).created_at

    for fmt in ("wav", "mp3"):  # the cached file, and one made from the same master
        hit = http.post("/v1/jobs", json={"text": text, "format": fmt, "timestamps": True})
        assert hit.status_code == 200, hit.text
        job = hit.json()
        assert job["cache"] == "hit" and job["status"] == "succeeded" and job["id"] != first["id"]
        # No alignment to wait for: the speech's own is there.
        again = http.get(f"/v1/jobs/{job['id']}/timestamps")
        assert again.status_code == 200 and again.json() == aligned
    with db.session() as s:
        assert s.get(Alignment, source).created_at == made


def test_a_follower_that_asks_gets_timestamps_its_leader_did_not_ask_for(http: httpx.Client) -> None:
    text = "Two identical requests share one synthesis, and only the second one wants timestamps."
    leader = http.post("/v1/jobs", json={"text": text}).json()
    follower = http.post("/v1/jobs", json={"text": text, "timestamps": True}).json()
    assert wait_final(http, leader["id"])["status"] == "succeeded"
    body = timestamps(http, follower["id"])
    assert body["source"] == "aligned"
    assert_every_word_once(body, text, wait_final(http, follower["id"])["duration"])
    assert http.get(f"/v1/jobs/{leader['id']}/timestamps").status_code == 404


def test_batch_items_may_ask_for_timestamps(http: httpx.Client) -> None:
    from tests.farm.test_batches import wait_batch

    body = {"phrases": ["A batch item with timestamps.", "Another one, also timed."], "timestamps": True}
    batch = wait_batch(http, http.post("/v1/batches", json=body).json()["id"])
    for item in batch["manifest"]:
        assert_every_word_once(timestamps(http, item["job_id"]), item["text"], 30.0)


@pytest.fixture(scope="module")
def timed_worker(farm: Farm) -> Iterator[subprocess.Popen[bytes]]:
    """A worker of the `timed` engine, which knows its own word timings (tests/fault_engines.py)."""
    with more_workers("timed", 1, 1) as [proc]:
        yield proc


def test_an_engines_own_alignments_are_used_as_they_are(http: httpx.Client, timed_worker: object) -> None:
    text = "An engine that knows, when it speaks, each word."
    job = wait_final(
        http, http.post("/v1/jobs", json={"text": text, "quality": "timed", "timestamps": True}).json()["id"]
    )
    assert job["engine"] == "timed"
    reply = http.get(f"/v1/jobs/{job['id']}/timestamps")  # recorded with the audio: no aligner
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["source"] == "engine"
    assert_every_word_once(body, text, job["duration"])
    step = job["duration"] / len(text.split())
    for i, word in enumerate(body["words"]):  # the engine's times, its words matched to the text's
        assert word["start"] == pytest.approx(i * step, abs=0.002)
        assert word["end"] == pytest.approx((i + 0.8) * step, abs=0.002)


def test_the_sdk_waits_for_timestamps_and_captions(farm: Farm, api_key: str) -> None:
    text = "The client waits for the words and their captions."
    with Client(farm.url, api_key) as client:
        job = client.submit(text, timestamps=True)
        body = client.timestamps(job.id)
        assert body.source == "aligned" and [w.text for w in body.words] == text.split()
        assert client.captions(job).startswith("WEBVTT")
        assert client.captions(job.id, "srt").startswith("1\n")
        with pytest.raises(NotFound, match="did not ask for timestamps"):
            client.timestamps(client.submit("The client did not ask for these.").id)

    async def run() -> None:
        async with AsyncClient(farm.url, api_key) as client:
            job = await client.submit("The async client wants word times too.", timestamps=True)
            body = await client.timestamps(job)
            assert body.source == "aligned" and len(body.words) == 7
            assert (await client.captions(job, "vtt")).startswith("WEBVTT")

    asyncio.run(run())


def test_say_writes_captions(farm: Farm, api_key: str, tmp_path: Path) -> None:
    env = {**os.environ, "VOICEFARM_URL": farm.url, "VOICEFARM_API_KEY": api_key}
    audio, captions = tmp_path / "out.wav", tmp_path / "out.vtt"
    done = subprocess.run(
        ["voicefarm", "say", "Say it, and caption it.", "-o", str(audio), "--captions", str(captions)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert audio.stat().st_size > 1000
    assert " ".join(c.text for c in webvtt.read(str(captions))) == "Say it, and caption it."
    refused = subprocess.run(
        ["voicefarm", "say", "Hello.", "-o", str(audio), "--captions", str(tmp_path / "out.txt")],
        env={**env, "COLUMNS": "400"},  # the message on one line
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "name a .vtt or .srt file" in refused.stdout + refused.stderr
