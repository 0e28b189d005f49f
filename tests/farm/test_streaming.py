"""Live audio: workers publish each piece as they make it, the API relays it (GET
/v1/jobs/{id}/stream, POST /v1/audio/speech with stream_format), the SDK and CLI play it along;
a stream never splices two engines' audio."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import re
import struct
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import av
import httpx
import httpx2
import openai
import pytest
import soundfile as sf

from tests.farm.conftest import Embedded, wait_final
from voicefarm.client import AsyncClient, Client, StreamBroken
from voicefarm.ops.supervisor import Farm

PARAGRAPH = (
    "The first sentence comes out while the rest is still being made. "
    "A second sentence follows it. "
    "Then a third one, a little longer than the others. "
    "And the fourth sentence ends the paragraph."
)


def streamed(http: httpx.Client, job_id: str, **params: str) -> tuple[bytes, datetime]:
    """The stream's bytes, and when its first bytes came."""
    first = None
    data = b""
    with http.stream("GET", f"/v1/jobs/{job_id}/stream", params=params) as r:
        assert r.status_code == 200, r.read()
        for chunk in r.iter_bytes():
            first = first or datetime.now(UTC)
            data += chunk
    assert first is not None
    return data, first


def stored(http: httpx.Client, job: dict) -> bytes:
    return http.get(job["audio_url"], follow_redirects=True).content


def duration(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(stream)) / stream.rate


@pytest.mark.parametrize("fmt", ["wav", "pcm"])
def test_a_queued_job_streams_before_it_finishes_the_stored_samples(http: httpx.Client, fmt: str) -> None:
    job_id = http.post("/v1/jobs", json={"text": f"{PARAGRAPH} ({fmt})", "format": fmt}).json()["id"]
    data, first = streamed(http, job_id)
    job = wait_final(http, job_id)
    assert job["status"] == "succeeded"
    # The first sentence was heard before the job was done with the rest.
    assert first < datetime.fromisoformat(job["timings"]["finished"])
    file = stored(http, job)
    if fmt == "pcm":
        assert data == file
        return
    riff, riff_size, wave, fmt_chunk, _, pcm, channels, rate = struct.unpack("<4sI4s4sIHHI", data[:28])
    assert (riff, wave, fmt_chunk, pcm, channels, rate) == (b"RIFF", b"WAVE", b"fmt ", 1, 1, job["sample_rate"])
    assert riff_size == 0xFFFFFFFF and data[36:40] == b"data" and data[40:44] == b"\xff\xff\xff\xff"
    assert data[44:] == file[44:]  # the very samples of the stored file
    samples, rate = sf.read(io.BytesIO(data))  # players take the unknown length
    assert rate == job["sample_rate"] and abs(len(samples) / rate - job["duration"]) < 0.01


@pytest.mark.parametrize(("fmt", "codec"), [("mp3", "mp3float"), ("opus", "opus"), ("aac", "aac")])
def test_compressed_streams_are_encoded_as_the_audio_comes(http: httpx.Client, fmt: str, codec: str) -> None:
    job_id = http.post("/v1/jobs", json={"text": f"{PARAGRAPH} ({fmt})", "format": "wav"}).json()["id"]
    data, _ = streamed(http, job_id, format=fmt)
    job = wait_final(http, job_id)
    with av.open(io.BytesIO(data)) as container:
        assert container.streams.audio[0].codec_context.name == codec
    assert abs(duration(data) - job["duration"]) < 0.1


def test_a_finished_job_streams_its_stored_file(http: httpx.Client) -> None:
    job = wait_final(http, http.post("/v1/jobs", json={"text": "Finished before anyone listened."}).json()["id"])
    data, _ = streamed(http, job["id"])
    assert data == stored(http, job)
    mp3, _ = streamed(http, job["id"], format="mp3")  # another format: from the master, not synthesized again
    assert abs(duration(mp3) - job["duration"]) < 0.1
    assert len(http.get(f"/v1/jobs/{job['id']}").json()["attempts"]) == 1


@pytest.mark.fault_injection
def test_a_format_that_cannot_stream_streams_only_its_stored_file(http: httpx.Client) -> None:
    job_id = http.post("/v1/jobs", json={"text": "Kept as FLAC.", "format": "flac"}).json()["id"]
    early = http.get(f"/v1/jobs/{job_id}/stream")
    job = wait_final(http, job_id)
    if early.status_code != 200:  # asked before the job succeeded: a 409 that says when to ask
        message = "its format 'flac' cannot be streamed as it is made; ask again once it has succeeded"
        assert early.status_code == 409 and message in early.json()["error"], early.text
    assert job["status"] == "succeeded"
    assert streamed(http, job_id)[0] == stored(http, job)
    failed = wait_final(
        http, http.post("/v1/jobs", json={"text": "Lost.", "format": "ogg", "quality": "hopeless"}).json()["id"]
    )
    r = http.get(f"/v1/jobs/{failed['id']}/stream")
    assert (
        failed["status"] == "failed"
        and r.status_code == 409
        and r.json()["error"].startswith(f"job {failed['id']} failed")
    )


def test_stream_refuses_what_it_cannot_do(http: httpx.Client) -> None:
    job_id = http.post("/v1/jobs", json={"text": "Refused formats."}).json()["id"]
    r = http.get(f"/v1/jobs/{job_id}/stream", params={"format": "wma"})
    assert r.status_code == 422 and "format" in r.json()["error"]
    assert http.get("/v1/jobs/no-such-job/stream").status_code == 404


@pytest.mark.fault_injection
def test_an_engine_that_fails_before_its_first_audio_is_passed_over(http: httpx.Client) -> None:
    job_id = http.post("/v1/jobs", json={"text": f"{PARAGRAPH} (flaky)", "quality": "flaky", "format": "pcm"}).json()[
        "id"
    ]
    data, _ = streamed(http, job_id)
    job = wait_final(http, job_id)
    assert [a["engine"] for a in job["attempts"]] == ["broken", "piper"]
    assert data == stored(http, job)  # Piper's audio alone


@pytest.mark.fault_injection
def test_a_failure_after_the_audio_began_cuts_the_stream(http: httpx.Client) -> None:
    job_id = http.post("/v1/jobs", json={"text": f"{PARAGRAPH} (stutters)", "quality": "stuttering"}).json()["id"]
    with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
        streamed(http, job_id)
    job = wait_final(http, job_id)  # the job itself went on to Piper
    assert job["status"] == "succeeded" and [a["engine"] for a in job["attempts"]] == ["stutters", "piper"]
    # Asked again, it is finished: Piper's audio, whole.
    assert streamed(http, job_id)[0] == stored(http, job)


@pytest.mark.fault_injection
def test_a_job_that_fails_before_any_audio_is_a_409(http: httpx.Client) -> None:
    job_id = http.post("/v1/jobs", json={"text": f"{PARAGRAPH} (hopeless)", "quality": "hopeless"}).json()["id"]
    r = http.get(f"/v1/jobs/{job_id}/stream")
    assert r.status_code == 409 and f"job {job_id} failed: every engine failed" in r.json()["error"]


def test_openai_streams_audio_chunked_and_a_repeat_from_the_cache(oai: openai.OpenAI, http: httpx.Client) -> None:
    text = f"{PARAGRAPH} (OpenAI)"
    with oai.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=text, response_format="wav"
    ) as response:
        assert response.headers["content-type"] == "audio/wav"
        assert response.headers["transfer-encoding"] == "chunked"
        live = b"".join(response.iter_bytes())
    assert live[40:44] == b"\xff\xff\xff\xff"  # the streaming header: synthesized as it went
    with oai.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=text, response_format="wav"
    ) as response:
        cached = b"".join(response.iter_bytes())
    assert cached[44:] == live[44:] and cached[40:44] != live[40:44]  # the stored file, same samples
    pcm = oai.audio.speech.create(model="tts-1", voice="alloy", input=text, response_format="pcm").content
    assert abs(len(pcm) / 2 / 24000 - sf.info(io.BytesIO(cached)).duration) < 0.05  # OpenAI's 24 kHz


def sse_events(response: openai._response.APIResponse | httpx.Response) -> list[dict]:
    return [json.loads(line.removeprefix("data: ")) for line in response.iter_lines() if line.startswith("data: ")]


def test_openai_server_sent_events(oai: openai.OpenAI) -> None:
    with oai.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=f"{PARAGRAPH} (events)", response_format="mp3", stream_format="sse"
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    assert [e["type"] for e in events[-1:]] == ["speech.audio.done"]
    deltas = [e for e in events if e["type"] == "speech.audio.delta"]
    assert len(deltas) == len(events) - 1 and len(deltas) > 1  # more than one: sent as they came
    audio = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    assert duration(audio) > 3


@pytest.mark.fault_injection
def test_openai_events_end_with_an_error_naming_the_job_when_cut(oai: openai.OpenAI, http: httpx.Client) -> None:
    with oai.audio.speech.with_streaming_response.create(
        model="stuttering", voice="alloy", input=f"{PARAGRAPH} (cut)", response_format="pcm", stream_format="sse"
    ) as response:
        events = sse_events(response)
    assert events[0]["type"] == "speech.audio.delta"
    error = events[-1]
    assert error["type"] == "error" and "stutters failed after its audio began" in error["error"]["message"]
    job_id = error["error"]["job_id"]
    assert job_id in error["error"]["message"]
    assert wait_final(http, job_id)["status"] == "succeeded"  # on Piper


@pytest.mark.fault_injection
def test_openai_raw_stream_is_truncated_when_cut(oai: openai.OpenAI) -> None:
    # openai's own httpx fork.
    with pytest.raises(httpx2.RemoteProtocolError, match="incomplete chunked read"):  # noqa: SIM117
        with oai.audio.speech.with_streaming_response.create(
            model="stuttering", voice="alloy", input=f"{PARAGRAPH} (raw cut)", response_format="pcm"
        ) as response:
            b"".join(response.iter_bytes())


def test_the_sdk_streams(farm: Farm, api_key: str) -> None:
    with Client(farm.url, api_key) as client:
        chunks = list(client.stream(f"{PARAGRAPH} (SDK)", format="pcm"))
        assert sum(map(len, chunks)) > 3 * 2 * 22050
        again = list(client.stream(f"{PARAGRAPH} (SDK)", format="pcm"))  # a cache hit: whole, at once
        assert b"".join(again) == b"".join(chunks)

    async def astream() -> bytes:
        async with AsyncClient(farm.url, api_key) as client:
            return b"".join([chunk async for chunk in client.stream(f"{PARAGRAPH} (async SDK)", format="wav")])

    assert sf.info(io.BytesIO(asyncio.run(astream()))).duration > 3


@pytest.mark.fault_injection
def test_the_sdk_says_when_a_stream_is_cut(farm: Farm, api_key: str, http: httpx.Client) -> None:
    with Client(farm.url, api_key) as client, pytest.raises(StreamBroken, match="was cut off") as cut:
        list(client.stream(f"{PARAGRAPH} (SDK cut)", quality="stuttering"))
    assert wait_final(http, cut.value.job_id)["status"] == "succeeded"


def test_say_streams_to_a_file_and_captions_it(farm: Farm, api_key: str, tmp_path: Path) -> None:
    out, captions = tmp_path / "out.wav", tmp_path / "out.srt"
    env = {"VOICEFARM_URL": farm.url, "VOICEFARM_API_KEY": api_key}
    done = subprocess.run(
        ["voicefarm", "say", f"{PARAGRAPH} (CLI)", "--stream", "-o", str(out), "--captions", str(captions)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"first audio after \d+ ms", done.stdout), done.stdout
    assert sf.info(out).duration > 3
    cues = captions.read_text().split("\n\n")
    assert cues[0].startswith("1\n00:00:00,") and "The first sentence comes out" in cues[0]


def test_the_embedded_farm_streams_through_files(embedded: Embedded) -> None:
    with httpx.Client(base_url=embedded.url, headers={"X-API-Key": embedded.key}, timeout=60) as http:
        job_id = http.post("/v1/jobs", json={"text": PARAGRAPH, "format": "pcm"}).json()["id"]
        data, first = streamed(http, job_id)
        job = wait_final(http, job_id)
        assert first < datetime.fromisoformat(job["timings"]["finished"])
        assert data == stored(http, job)
    assert list((embedded.data_dir / "streams").glob("*.jsonl")), "the feed is a file under the data dir"


def test_stream_waits_while_queued(http: httpx.Client) -> None:
    """Asked before a worker took the job, the stream waits and then starts from the first piece."""
    ids = [
        http.post("/v1/jobs", json={"text": f"{PARAGRAPH} (queue {n})", "format": "pcm"}).json()["id"] for n in range(3)
    ]
    started = time.monotonic()
    data, _ = streamed(http, ids[-1])  # behind two others on one Piper worker
    job = wait_final(http, ids[-1])
    assert data == stored(http, job) and time.monotonic() - started < 60
