"""The SDK (voicefarm.client), sync and async, against the test farm (its retries are in
tests/unit/test_client_retries.py)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator

import pytest
import soundfile as sf

from voicefarm.client import AsyncClient, Client, Invalid, JobFailed, NotFound, Unauthorized
from voicefarm.ops.supervisor import Farm


@pytest.fixture
def client(farm: Farm, api_key: str) -> Iterator[Client]:
    with Client(farm.url, api_key) as c:
        yield c


def test_submit_wait_download_then_a_cache_hit(client: Client) -> None:
    text = "The client submits, waits and downloads this sentence."
    job = client.submit(text, voice="en_US-joe-medium", quality="fast", format="wav")
    assert job.status == "queued" and job.id and client.get(job.id).id == job.id
    done = client.wait(job.id)
    assert done.status == "succeeded" and done.engine == "piper"
    audio = client.download(done)  # a redirect to the S3 server, followed without the key
    samples, rate = sf.read(io.BytesIO(audio))
    assert rate == 22050 and abs(len(samples) / rate - done.duration) < 0.01

    hit = client.submit(text, voice="en_US-joe-medium", format="wav")
    assert hit.cache == "hit" and hit.id is None and client.wait(hit) == hit
    assert client.download(hit) == audio
    assert client.synthesize(text, format="wav") == audio


def test_async_client(farm: Farm, api_key: str) -> None:
    async def run() -> None:
        async with AsyncClient(farm.url, api_key) as client:
            job = await client.submit("The async client asked for this one.", format="flac")
            done = await client.wait(job)
            assert done.status == "succeeded" and (await client.get(job.id)).status == "succeeded"
            assert sf.info(io.BytesIO(await client.download(done))).format == "FLAC"
            audio = await asyncio.gather(*(client.synthesize(f"Async phrase number {i}.") for i in range(3)))
            assert all(sf.info(io.BytesIO(a)).samplerate == 22050 for a in audio)
            with pytest.raises(Invalid, match="unknown voice 'nobody'"):
                await client.submit("Hello.", voice="nobody")

    asyncio.run(run())


def test_errors_carry_the_api_message(client: Client, farm: Farm) -> None:
    with pytest.raises(Invalid) as refused:
        client.submit("Hello.", voice="nobody")
    assert refused.value.status == 422 and "unknown voice 'nobody'" in refused.value.message
    with pytest.raises(Invalid, match=r"speed 9\.0 is out of range"):
        client.submit("Hello.", speed=9.0)
    with pytest.raises(NotFound, match="no job 'missing'"):
        client.get("missing")
    with Client(farm.url, "not-a-key") as stranger, pytest.raises(Unauthorized) as denied:
        stranger.submit("Hello.")
    assert denied.value.status == 401 and denied.value.message == "invalid API key"


@pytest.mark.fault_injection
def test_a_failed_job_raises_job_failed(client: Client) -> None:
    with pytest.raises(JobFailed, match="every engine failed") as failed:
        client.synthesize("Nothing can say this.", quality="hopeless")
    assert failed.value.job.status == "failed"


@pytest.mark.fault_injection
def test_wait_times_out_naming_the_job(client: Client) -> None:
    job = client.submit("A slow engine holds this one up.", quality="slow")
    with pytest.raises(TimeoutError, match=rf"job {job.id} is still (queued|running) after 0.2 s"):
        client.wait(job, timeout=0.2)
    assert client.wait(job, timeout=60).status == "succeeded"


def test_upload_a_voice_and_speak_with_it(client: Client, speech_wav: bytes) -> None:
    voice = client.upload_voice("Narrator", "en-US", speech_wav, consent=True, description="calm")
    assert voice.cloned and voice.description == "calm" and voice.analysis.sample_rate == 22050
    assert voice.id in {v.id for v in client.voices() if v.cloned}
    job = client.wait(client.submit("Spoken with my uploaded voice.", voice=voice.id))
    assert job.status == "succeeded" and job.voice == voice.id
    with pytest.raises(Invalid, match="consent must be true"):
        client.upload_voice("Someone", "en", speech_wav, consent=False)
    client.delete_voice(voice.id)
    assert voice.id not in {v.id for v in client.voices()}


def test_batches(client: Client) -> None:
    phrases = ["The first line of the batch.", "The second line of the batch."]
    batch = client.create_batch(phrases=phrases, voices=["en_US-joe-medium"], format="wav")
    assert batch.total == 2 and batch.status in ("running", "done")
    done = client.wait_batch(batch.id, timeout=120)
    assert done.status == "done" and done.progress == 1 and done.counts.succeeded == 2 and not done.failed
    assert sorted((item.index, item.text) for item in done.manifest) == list(enumerate(phrases))
    for item in done.manifest:
        assert sf.info(io.BytesIO(client.download(item))).samplerate == 22050
