"""POST /v1/audio/speech through the official `openai` client, pointed at the test farm."""

from __future__ import annotations

import io
import os
import re
import subprocess
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
import soundfile as sf
from sqlalchemy import select

from tests.farm.conftest import free_port, wait_final
from voicefarm.client import Client
from voicefarm.ops.supervisor import Farm
from voicefarm.store import db
from voicefarm.store.models import Job


def jobs_for(text: str) -> list[Job]:
    with db.session() as s:
        return list(s.scalars(select(Job).where(Job.text == text)))


def test_speech_is_audio_and_a_repeat_comes_from_the_cache(oai: openai.OpenAI) -> None:
    text = "An OpenAI client asked the farm for this sentence."
    audio = oai.audio.speech.create(model="tts-1", voice="alloy", input=text, response_format="wav").content
    samples, rate = sf.read(io.BytesIO(audio))
    assert rate == 22050 and len(samples) > rate
    [job] = jobs_for(text)
    assert job.quality == "fast" and job.voice == "en_US-joe-medium"  # alloy: the default voice

    again = oai.audio.speech.create(model="tts-1", voice="alloy", input=text, response_format="wav")
    # The first was streamed as it was made (a WAV header of unknown length), the repeat is the
    # stored file: the same samples.
    assert again.content[44:] == audio[44:] and len(jobs_for(text)) == 1  # no new job


def test_tts_1_hd_is_the_high_tier(oai: openai.OpenAI) -> None:
    text = "High definition, as far as this farm goes."
    audio = oai.audio.speech.create(model="tts-1-hd", voice="nova", input=text, response_format="flac").content
    assert sf.info(io.BytesIO(audio)).duration > 0.5
    assert [j.quality for j in jobs_for(text)] == ["high"]


@pytest.mark.parametrize(
    ("fmt", "media_type"),
    [("mp3", "audio/mpeg"), ("opus", "audio/ogg; codecs=opus"), ("aac", "audio/aac"), ("pcm", "audio/L16")],
)
def test_each_openai_format(oai: openai.OpenAI, fmt: str, media_type: str) -> None:
    text = "Every format OpenAI offers."
    wav = sf.info(
        io.BytesIO(oai.audio.speech.create(model="tts-1", voice="echo", input=text, response_format="wav").content)
    )
    answer = oai.audio.speech.create(model="tts-1", voice="echo", input=text, response_format=fmt)
    assert answer.response.headers["content-type"] == media_type
    if fmt == "pcm":  # OpenAI's pcm: 16-bit mono at 24 kHz, no header
        assert abs(len(answer.content) / 2 / 24000 - wav.duration) < 0.05
    elif fmt != "aac":
        assert abs(sf.info(io.BytesIO(answer.content)).duration - wav.duration) < 0.1


def test_farm_voices_pass_through_and_extra_fields_are_ignored(
    oai: openai.OpenAI, farm: Farm, api_key: str, speech_wav: bytes
) -> None:
    built_in = oai.audio.speech.create(
        model="tts-1",
        voice="en_US-joe-medium",
        input="A farm voice by its id.",
        response_format="wav",
        instructions="Speak cheerfully.",
    )
    assert sf.info(io.BytesIO(built_in.content)).samplerate == 22050
    with Client(farm.url, api_key) as client:
        cloned = client.upload_voice("Narrator", "en", speech_wav, consent=True)
    text = "An uploaded voice by its id."
    assert oai.audio.speech.create(model="tts-1", voice={"id": cloned.id}, input=text, response_format="wav").content
    assert [j.voice for j in jobs_for(text)] == [cloned.id]


@pytest.mark.fault_injection
@pytest.mark.parametrize(
    ("request_fields", "error", "message"),
    [
        ({"voice": "nobody"}, openai.UnprocessableEntityError, "unknown voice 'nobody'"),
        ({"model": "gpt-9-tts"}, openai.UnprocessableEntityError, "model 'gpt-9-tts' is not supported"),
        ({"speed": 4.0}, openai.UnprocessableEntityError, "speed 4.0 is out of range [0.5, 2.0]"),
        ({"input": " "}, openai.UnprocessableEntityError, "text is empty"),
        ({"stream_format": "json"}, openai.UnprocessableEntityError, "stream_format: Input should be 'audio' or 'sse'"),
        ({"model": "hopeless"}, openai.InternalServerError, "failed: every engine failed"),  # a tier by name
    ],
)
def test_errors_reach_the_openai_client_with_their_message(
    oai: openai.OpenAI, request_fields: dict, error: type, message: str
) -> None:
    fields = {"model": "tts-1", "voice": "alloy", "input": "Something to say.", **request_fields}
    with pytest.raises(error, match=re.escape(message)):
        oai.audio.speech.create(**fields)


def test_a_wrong_key_is_an_authentication_error(farm: Farm) -> None:
    stranger = openai.OpenAI(base_url=f"{farm.url}/v1", api_key="not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="invalid API key"):
        stranger.audio.speech.create(model="tts-1", voice="alloy", input="Let me in.")


@pytest.fixture
def impatient_api(farm: Farm) -> Iterator[str]:
    """A second API process on the same farm that waits 10 ms for a job before answering 504."""
    port = free_port()
    env = {**os.environ, "VOICEFARM_API_PORT": str(port), "VOICEFARM_OPENAI_WAIT_SECONDS": "0.01"}
    api = subprocess.Popen(["voicefarm", "api"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/healthz")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the second API did not come up"
                time.sleep(0.2)
        yield url
    finally:
        api.terminate()
        api.wait(10)


def test_a_job_that_takes_too_long_is_a_504_naming_it(impatient_api: str, api_key: str, http: httpx.Client) -> None:
    oai = openai.OpenAI(base_url=f"{impatient_api}/v1", api_key=api_key, max_retries=0)
    text = "This sentence takes longer to say than the API is willing to wait for it, by some margin."
    with pytest.raises(openai.InternalServerError) as timed_out:
        oai.audio.speech.create(model="tts-1", voice="alloy", input=text, response_format="wav")
    assert timed_out.value.status_code == 504
    job_id = timed_out.value.body["job_id"]
    assert f"job {job_id} is still" in str(timed_out.value)
    assert wait_final(http, job_id)["status"] == "succeeded"  # the caller polls it
    assert oai.audio.speech.create(model="tts-1", voice="alloy", input=text, response_format="wav").content
    assert len(jobs_for(text)) == 1
