"""Output formats and rates: each is its own cached rendition, made from the lossless master
without synthesizing again."""

from __future__ import annotations

import io

import av
import httpx
import pytest
import soundfile as sf
from sqlalchemy import func, select

from tests.farm.conftest import wait_final
from voicefarm.store import db
from voicefarm.store.models import Attempt, Job

TEXT = "Every format is made from one synthesis."


def attempts_for_text(text: str) -> int:
    with db.session() as s:
        return s.scalar(select(func.count(Attempt.id)).join(Job).where(Job.text == text))


def probe(data: bytes) -> tuple[str, int, float]:
    """Codec, rate and duration as FFmpeg reads them."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return stream.codec_context.name, stream.rate, samples / stream.rate


@pytest.fixture(scope="module")
def first(farm, api_key: str) -> dict:
    with httpx.Client(base_url=farm.url, headers={"X-API-Key": api_key}) as http:
        job = wait_final(http, http.post("/v1/jobs", json={"text": TEXT, "format": "wav"}).json()["id"])
    assert job["status"] == "succeeded" and attempts_for_text(TEXT) == 1
    return job


@pytest.mark.parametrize(
    ("fmt", "rate", "codec", "expected_rate"),
    [
        ("flac", None, "flac", 22050),
        ("mp3", None, "mp3float", 22050),  # FFmpeg's float MP3 decoder
        ("ogg", 16000, "vorbis", 16000),
        ("opus", None, "opus", 24000),  # Opus has no 22.05 kHz: the next rate up
        ("opus", 16000, "opus", 16000),
        ("aac", 44100, "aac", 44100),
        ("wav", 8000, "pcm_s16le", 8000),
    ],
)
def test_other_formats_come_from_the_master(
    http: httpx.Client, first: dict, fmt: str, rate: int | None, codec: str, expected_rate: int
) -> None:
    body = {"text": TEXT, "format": fmt, **({"sample_rate": rate} if rate else {})}
    r = http.post("/v1/jobs", json=body)
    assert r.status_code == 200, r.text  # converted at once: no job, no synthesis
    hit = r.json()
    assert hit["cache"] == "hit" and hit["sample_rate"] == expected_rate
    assert attempts_for_text(TEXT) == 1
    data = http.get(hit["audio_url"], follow_redirects=True).content
    got_codec, got_rate, seconds = probe(data)
    # Opus (Ogg) reports FFmpeg's decode rate, always 48 kHz; the file says what it was encoded at.
    assert got_codec == codec and (got_rate == expected_rate or codec == "opus")
    assert abs(seconds - first["duration"]) < 0.15
    assert http.post("/v1/jobs", json=body).json()["content_key"] == hit["content_key"]  # now cached as itself


def test_raw_pcm_is_16_bit_samples(http: httpx.Client, first: dict) -> None:
    hit = http.post("/v1/jobs", json={"text": TEXT, "format": "pcm", "sample_rate": 16000}).json()
    data = http.get(hit["audio_url"], follow_redirects=True).content
    assert abs(len(data) / 2 / 16000 - first["duration"]) < 0.01
    assert attempts_for_text(TEXT) == 1


def test_a_new_request_in_a_compressed_format_is_synthesized_once(http: httpx.Client) -> None:
    text = "Straight to Ogg Opus at sixteen kilohertz."
    job = wait_final(
        http, http.post("/v1/jobs", json={"text": text, "format": "opus", "sample_rate": 16000}).json()["id"]
    )
    assert job["status"] == "succeeded" and job["sample_rate"] == 16000
    info = sf.info(io.BytesIO(http.get(job["audio_url"], follow_redirects=True).content))
    assert info.format == "OGG" and info.subtype == "OPUS" and info.samplerate == 16000
    assert http.post("/v1/jobs", json={"text": text, "format": "wav"}).json()["cache"] == "hit"
    assert attempts_for_text(text) == 1


def test_bad_rate_and_format(http: httpx.Client) -> None:
    r = http.post("/v1/jobs", json={"text": "hi", "sample_rate": 4000})
    assert r.status_code == 422 and "sample_rate 4000 is out of range" in r.json()["error"]
    r = http.post("/v1/jobs", json={"text": "hi", "format": "wma"})
    assert "format 'wma' is not supported; use one of wav, flac, mp3, ogg, opus, aac, pcm" in r.json()["error"]
