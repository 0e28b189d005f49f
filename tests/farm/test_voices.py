"""The voice library and XTTS cloning through the farm: upload, validate, clone, version, purge."""

from __future__ import annotations

import io
import re

import httpx
import numpy as np
import pytest
import redis
import soundfile as sf
import soxr
from sqlalchemy import func, select

from tests.farm.conftest import ENV, LOGS, wait_final
from voicefarm.settings import Settings
from voicefarm.store import db
from voicefarm.store.models import ClonedVoice, Job, Rendition
from voicefarm.store.objects import open_store


def encode(samples: np.ndarray, rate: int, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def upload(http: httpx.Client, data: bytes, filename: str = "sample.wav", **fields) -> httpx.Response:
    form = {"name": "Narrator", "language": "en", "consent": "true", **fields}
    return http.post(
        "/v1/voices", data={k: v for k, v in form.items() if v is not None}, files={"file": (filename, data)}
    )


def objects(prefix: str) -> list[str]:
    store = open_store(Settings())
    page = store.client.list_objects_v2(Bucket=store.bucket, Prefix=prefix)
    return [o["Key"] for o in page.get("Contents", [])]


def stored_state() -> tuple[int, int]:
    with db.session() as s:
        rows = s.scalar(select(func.count(ClonedVoice.id)))
    return rows, len(objects("voices/"))


def test_upload_reports_the_analysis_and_stores_mono_at_24k(http: httpx.Client, speech) -> None:
    samples, rate = speech
    stereo = np.stack([samples, samples * 0.8], axis=1)
    r = upload(http, encode(stereo, rate), description="calm", language="en-GB")
    assert r.status_code == 201, r.text
    voice = r.json()
    assert voice["cloned"] and voice["version"] == "1" and voice["language"] == "en-GB"
    assert voice["fallback_voice"] == "en_US-joe-medium" and voice["description"] == "calm"
    a = voice["analysis"]
    assert a["channels"] == 2 and a["sample_rate"] == rate and abs(a["duration"] - len(samples) / rate) < 0.01
    assert a["snr_db"] > 25 and a["speech_ratio"] > 0.5 and a["clipping_ratio"] == 0
    assert -40 < a["loudness_lufs"] < -5 and a["peak_dbfs"] <= 0
    assert "6" in voice["recommended_seconds"]
    stored = objects(f"voices/{voice['id']}/")
    assert stored == [f"voices/{voice['id']}/v1/sample.flac"]
    data, stored_rate = sf.read(io.BytesIO(open_store(Settings()).get(stored[0])))
    assert stored_rate == 24000 and data.ndim == 1
    listed = {v["id"]: v for v in http.get("/v1/voices").json()}
    assert listed[voice["id"]]["cloned"] and "en_US-joe-medium" in listed
    assert http.get(f"/v1/voices/{voice['id']}").json()["analysis"] == a


@pytest.mark.parametrize(
    ("fmt", "subtype", "name"), [("FLAC", None, "s.flac"), ("MP3", None, "s.mp3"), ("OGG", "VORBIS", "s.ogg")]
)
def test_flac_mp3_and_ogg_are_accepted(http: httpx.Client, speech, fmt: str, subtype: str | None, name: str) -> None:
    samples, rate = speech
    r = upload(http, encode(samples, rate, fmt, subtype), filename=name)
    assert r.status_code == 201, r.text
    assert r.json()["analysis"]["format"] == fmt


def test_48k_stereo_is_mixed_down_and_resampled(http: httpx.Client, speech) -> None:
    samples, rate = speech
    hi = soxr.resample(samples, rate, 48000)
    r = upload(http, encode(np.stack([hi, hi], axis=1), 48000))
    assert r.status_code == 201, r.text
    assert r.json()["analysis"]["sample_rate"] == 48000 and r.json()["analysis"]["channels"] == 2


def test_short_sample_is_accepted_with_a_warning(http: httpx.Client, speech) -> None:
    samples, rate = speech
    r = upload(http, encode(samples[: int(4.5 * rate)], rate))
    assert r.status_code == 201, r.text
    assert any("shorter than 6 s" in w for w in r.json()["analysis"]["warnings"])


def _bad_uploads(speech) -> list[tuple[str, bytes, str, int, str]]:
    samples, rate = speech
    rng = np.random.default_rng(1)
    t = np.arange(8 * rate) / rate
    return [
        ("sine tone", encode(0.5 * np.sin(2 * np.pi * 220 * t), rate), "s.wav", 422, "too little speech"),
        ("silence", encode(np.zeros(8 * rate), rate), "s.wav", 422, "silent"),
        ("white noise", encode(0.3 * rng.standard_normal(8 * rate), rate), "s.wav", 422, "too noisy"),
        ("clipped speech", encode(np.clip(samples * 20, -1, 1), rate), "s.wav", 422, "clipped"),
        ("1 s clip", encode(samples[:rate], rate), "s.wav", 422, "1.0 s long; it must be 3–30 s"),
        (
            "5 minutes",
            encode(np.tile(samples, int(300 * rate / len(samples)) + 1)[: 300 * rate], rate, "MP3"),
            "s.mp3",
            422,
            "s long; it must be 3–30 s",
        ),
        ("8 kHz", encode(soxr.resample(samples, rate, 8000), 8000), "s.wav", 422, "8000 Hz; at least 16000 Hz"),
        ("corrupt bytes", b"RIFF\x24\x00\x00\x00WAVEfmt " + rng.bytes(2000), "s.wav", 415, "not a readable audio file"),
        (
            "text renamed .wav",
            b"Dear diary, today I recorded nothing at all.\n" * 20,
            "s.wav",
            415,
            "not a readable audio file",
        ),
        ("empty file", b"", "s.wav", 422, "the file is empty"),
        ("oversize file", b"\0" * (10 * 1024 * 1024 + 1), "s.wav", 413, "larger than the limit of 10485760 bytes"),
    ]


def test_bad_uploads_are_refused_with_the_reason_and_nothing_is_stored(http: httpx.Client, speech) -> None:
    for case, data, filename, status, message in _bad_uploads(speech):
        before = stored_state()
        r = upload(http, data, filename=filename)
        assert r.status_code == status, (case, r.text)
        assert message in r.json()["error"], (case, r.json())
        assert stored_state() == before, case


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": None}, "name: Field required"),
        ({"language": None}, "language: Field required"),
        ({"language": "english!"}, "language: String should match pattern"),
        ({"consent": "false"}, "consent must be true"),
        ({"consent": None}, "consent: Field required"),
        ({"fallback_voice": "nobody"}, "fallback_voice 'nobody' is not a built-in voice"),
    ],
)
def test_missing_or_bad_fields(http: httpx.Client, speech, fields: dict, message: str) -> None:
    before = stored_state()
    r = upload(http, encode(*speech), **fields)
    assert r.status_code == 422 and message in r.json()["error"], r.text
    assert stored_state() == before


def test_voices_are_private_to_their_tenant(http: httpx.Client, other_key: str, speech) -> None:
    voice = upload(http, encode(*speech)).json()
    with httpx.Client(base_url=str(http.base_url), headers={"X-API-Key": other_key}) as other:
        assert voice["id"] not in {v["id"] for v in other.get("/v1/voices").json()}
        assert other.get(f"/v1/voices/{voice['id']}").status_code == 404
        assert other.patch(f"/v1/voices/{voice['id']}", data={"name": "mine"}).status_code == 404
        assert other.delete(f"/v1/voices/{voice['id']}").status_code == 404
        r = other.post("/v1/jobs", json={"text": "Borrowed voice.", "voice": voice["id"], "quality": "high"})
        assert r.status_code == 422 and "unknown voice" in r.json()["error"]
    assert http.get(f"/v1/voices/{voice['id']}").json()["name"] == "Narrator"


def worker_log_count(pattern: str) -> int:
    return len(re.findall(pattern, (LOGS / "worker-xtts.log").read_text()))


def test_cloning_with_xtts_end_to_end_then_purge(http: httpx.Client, speech) -> None:
    voice = upload(http, encode(*speech)).json()
    vid = voice["id"]

    first = http.post("/v1/jobs", json={"text": "Hello from a cloned voice.", "voice": vid, "quality": "high"})
    assert first.status_code == 202, first.text
    job = wait_final(http, first.json()["id"], timeout=180)
    assert job["status"] == "succeeded", job
    assert job["engine"] == "xtts" and job["sample_rate"] == 24000 and job["spoken_voice"] == vid
    audio = http.get(job["audio_url"], follow_redirects=True).content
    samples, rate = sf.read(io.BytesIO(audio))
    assert rate == 24000 and len(samples) > 0 and np.isfinite(samples).all()

    # The speaker latents were computed once and stored under the voice; the next job reuses them.
    latents = [k for k in objects(f"voices/{vid}/") if "/latents/" in k]
    assert len(latents) == 1 and latents[0].startswith(f"voices/{vid}/v1/latents/xtts-")
    second = wait_final(
        http,
        http.post("/v1/jobs", json={"text": "And once more, differently.", "voice": vid, "quality": "high"}).json()[
            "id"
        ],
        timeout=180,
    )
    assert second["status"] == "succeeded" and second["engine"] == "xtts"
    assert worker_log_count(rf"latents: computed voices/{vid}/") == 1

    # A cloned voice on a tier whose engines cannot clone speaks its fallback voice, and says so.
    fallback = wait_final(
        http, http.post("/v1/jobs", json={"text": "Fallback please.", "voice": vid, "quality": "fast"}).json()["id"]
    )
    assert fallback["engine"] == "piper" and fallback["spoken_voice"] == "en_US-joe-medium"

    with db.session() as s:
        keys = [r.content_key for r in s.scalars(select(Rendition).where(Rendition.voice == vid))]
        audio_objects = [r.object_key for r in s.scalars(select(Rendition).where(Rendition.voice == vid))]
    assert len(keys) == 2
    cache = redis.Redis.from_url(ENV["VOICEFARM_REDIS_URL"])
    assert all(cache.exists(f"{ENV['VOICEFARM_REDIS_PREFIX']}:audio:{k}") for k in keys)

    assert http.delete(f"/v1/voices/{vid}").status_code == 204
    assert objects(f"voices/{vid}/") == []
    assert not any(open_store(Settings()).exists(k) for k in audio_objects)
    assert not any(cache.exists(f"{ENV['VOICEFARM_REDIS_PREFIX']}:audio:{k}") for k in keys)
    with db.session() as s:
        assert s.get(ClonedVoice, vid) is None
        assert s.scalar(select(func.count()).select_from(Rendition).where(Rendition.voice == vid)) == 0
        assert s.scalar(select(func.count()).select_from(Job).where(Job.voice == vid)) == 0
    assert http.get(f"/v1/jobs/{job['id']}").status_code == 404
    assert http.get(job["audio_url"]).status_code == 404
    r = http.post("/v1/jobs", json={"text": "Gone?", "voice": vid, "quality": "high"})
    assert r.status_code == 422 and "unknown voice" in r.json()["error"]


def test_replacing_the_sample_makes_a_new_version(http: httpx.Client, speech) -> None:
    samples, rate = speech
    voice = upload(http, encode(samples, rate)).json()
    vid = voice["id"]
    body = {"text": "Version test.", "voice": vid, "quality": "high"}
    v1 = wait_final(http, http.post("/v1/jobs", json=body).json()["id"], timeout=180)
    assert v1["status"] == "succeeded"

    renamed = http.patch(f"/v1/voices/{vid}", data={"name": "Renamed"}).json()
    assert renamed["name"] == "Renamed" and renamed["version"] == "1"
    assert http.post("/v1/jobs", json=body).json()["cache"] == "hit"  # a rename changes no audio

    r = http.patch(
        f"/v1/voices/{vid}", data={"consent": "true"}, files={"file": ("new.wav", encode(samples[::-1].copy(), rate))}
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == "2"
    # Old version's sample and latents are gone; its audio is never served for the new one.
    assert all(k.startswith(f"voices/{vid}/v2/") for k in objects(f"voices/{vid}/"))
    again = http.post("/v1/jobs", json=body)
    assert again.status_code == 202 and again.json()["content_key"] != v1["content_key"]
    assert wait_final(http, again.json()["id"], timeout=180)["status"] == "succeeded"
    assert http.patch(f"/v1/voices/{vid}", files={"file": ("x.wav", encode(samples, rate))}).status_code == 422


def test_cloning_with_styletts2_end_to_end(http: httpx.Client, speech) -> None:
    vid = upload(http, encode(*speech)).json()["id"]
    body = {"text": "A style vector from your own voice.", "voice": vid, "quality": "highest"}
    job = wait_final(http, http.post("/v1/jobs", json=body).json()["id"], timeout=180)
    assert job["status"] == "succeeded", (job["error"], job["attempts"])
    assert job["engine"] == "styletts2", job["attempts"]
    assert job["sample_rate"] == 24000 and job["spoken_voice"] == vid
    samples, rate = sf.read(io.BytesIO(http.get(job["audio_url"], follow_redirects=True).content))
    assert rate == 24000 and len(samples) > 0 and np.isfinite(samples).all()
    styles = [k for k in objects(f"voices/{vid}/") if "/latents/styletts2-" in k]
    assert len(styles) == 1  # the style vector, stored under the voice so deleting it purges it
    assert http.delete(f"/v1/voices/{vid}").status_code == 204
    assert objects(f"voices/{vid}/") == []


def test_styletts2_built_in_voice_end_to_end(http: httpx.Client) -> None:
    assert "styletts2-default" in {v["id"] for v in http.get("/v1/voices").json()}
    body = {"text": "No upload needed for this one.", "voice": "styletts2-default", "quality": "highest"}
    job = wait_final(http, http.post("/v1/jobs", json=body).json()["id"], timeout=180)
    assert job["status"] == "succeeded" and job["engine"] == "styletts2", (job["error"], job["attempts"])
    samples, rate = sf.read(io.BytesIO(http.get(job["audio_url"], follow_redirects=True).content))
    assert rate == 24000 and len(samples) > 0 and np.isfinite(samples).all()
