"""Bad input gets a 4xx whose message names the problem, and nothing is stored or enqueued."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from voicefarm.audio.codec import FORMATS, encode, output_rate
from voicefarm.engines.base import Audio
from voicefarm.settings import get_settings
from voicefarm.store import db
from voicefarm.store.models import Job
from voicefarm.telemetry import stats


def state() -> tuple[int, int]:
    """Jobs recorded, and messages on the Piper queue."""
    with db.session() as s:
        jobs = s.scalar(select(func.count(Job.id)))
    return jobs, stats.queue_depths(get_settings())["piper"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"text": ""}, 422, "text is empty"),
        ({"text": " \n\t "}, 422, "text is empty"),
        ({"text": "a" * 200_001}, 422, "maximum is 200000"),
        ({"text": "hi", "voice": "nobody"}, 422, "unknown voice 'nobody'"),
        ({"text": "hi", "language": "fr"}, 422, "language 'fr' is not supported"),
        ({"text": "hi", "format": "wma"}, 422, "format 'wma' is not supported"),
        ({"text": "hi", "speed": 5}, 422, "speed 5.0 is out of range"),
        ({"text": "hi", "speed": 0}, 422, "speed 0.0 is out of range"),
        ({"text": "hi", "quality": "ultra"}, 422, "quality 'ultra' is not a tier"),
        ({"text": "hi", "speed": "fast"}, 422, "speed: Input should be a valid number"),
        ({"text": "<speak>Hi <audio src='x.wav'/></speak>"}, 422, "SSML element <audio> is not supported"),
        ({"text": "<speak><p>Hi</speak>"}, 422, "SSML is not well-formed XML"),
        ({"voice": "en_US-joe-medium"}, 422, "text: Field required"),
        ({"text": "hi", "colour": "blue"}, 422, "colour: Extra inputs are not permitted"),
        ({"text": "hi", "timestamps": "yes"}, 422, "timestamps: Input should be a valid boolean"),
        ({"text": "hi", "timestamps": 1}, 422, "timestamps: Input should be a valid boolean"),
    ],
)
def test_invalid_job_is_refused_and_nothing_is_kept(http: TestClient, body: dict, status: int, message: str) -> None:
    before = state()
    r = http.post("/v1/jobs", json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    assert state() == before


def test_malformed_json(http: TestClient) -> None:
    before = state()
    r = http.post("/v1/jobs", content=b'{"text": "hi",', headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "malformed JSON body"
    assert state() == before


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing API key"),
        ({"X-API-Key": "vf_not-a-key"}, "invalid API key"),
        ({"Authorization": "Bearer vf_not-a-key"}, "invalid API key"),
        ({"Authorization": "vf_not-a-key"}, "malformed Authorization header"),
        ({"Authorization": "Basic dm9pY2U6ZmFybQ=="}, "malformed Authorization header"),
    ],
)
def test_missing_or_wrong_key(app: TestClient, headers: dict, message: str) -> None:
    before = state()
    r = app.post("/v1/jobs", json={"text": "hi"}, headers=headers)
    assert r.status_code == 401 and message in r.json()["error"]
    assert state() == before


def test_bearer_key_works(app: TestClient, api_key: str) -> None:
    r = app.get("/v1/voices", headers={"Authorization": f"Bearer {api_key}"})
    assert r.status_code == 200


def test_a_malformed_authorization_is_refused_beside_a_good_key(app: TestClient, api_key: str) -> None:
    r = app.get("/v1/voices", headers={"X-API-Key": api_key, "Authorization": "Token abc"})
    assert r.status_code == 401 and "malformed Authorization header" in r.json()["error"]
    # An empty bearer names no key, so the X-API-Key decides.
    assert app.get("/v1/voices", headers={"X-API-Key": api_key, "Authorization": "Bearer "}).status_code == 200


def test_unknown_job_and_unready_audio(http: TestClient) -> None:
    assert http.get("/v1/jobs/doesnotexist").json()["error"] == "no job 'doesnotexist'"
    assert http.get("/v1/audio/" + "0" * 64 + ".wav").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "where"),
    [
        ("GET", "/v1/audio/..%00.wav", "path"),
        ("GET", "/v1/jobs/%00", "path"),
        ("GET", "/v1/voices/x%1by", "path"),
        ("GET", "/v1/voices?x=%00", "query"),
    ],
)
def test_control_characters_in_a_path_or_query_are_a_400(http: TestClient, method: str, path: str, where: str) -> None:
    r = http.request(method, path)
    assert r.status_code == 400 and r.json()["error"] == f"the request's {where} contains a control character"


@pytest.mark.parametrize("field", ["text", "voice", "language", "quality", "format"])
def test_control_characters_in_json_are_refused_and_nothing_is_kept(http: TestClient, field: str) -> None:
    before = state()
    r = http.post("/v1/jobs", json={"text": "Fine.", field: "bad\x00value"})
    assert (
        r.status_code == 422
        and r.json()["error"] == f"{field}: contains a control character (only tab and line breaks are allowed)"
    )
    assert state() == before


def test_line_breaks_and_tabs_in_text_are_speech_not_errors(http: TestClient) -> None:
    assert http.post("/v1/jobs", json={"text": "Line one.\nLine\ttwo.\r\n"}).status_code == 202


def test_control_characters_in_form_fields_are_refused(http: TestClient) -> None:
    r = http.post(
        "/v1/voices",
        data={"name": "Nar\x00rator", "language": "en", "consent": "true"},
        files={"file": ("a.wav", b"RIFF", "audio/wav")},
    )
    assert r.status_code == 422 and r.json()["error"].startswith("name: contains a control character")


# Found by schemathesis (tests/farm/test_schema_fuzz.py), or by making the schema say what the
# API takes: each was a 500, a message with a Python repr, or a request the schema and the API
# judged differently.


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "tts-1", "input": "Hi\x00there.", "voice": "alloy"}, "input"),
        # pydantic names each member of the union `voice` is: the string one, then the object.
        ({"model": "tts-1", "input": "Hi there.", "voice": "al\x00loy"}, "voice.constrained-str"),
        ({"model": "tts-1", "input": "Hi there.", "voice": {"id": "al\x00loy"}}, "voice.VoiceRef.id"),
    ],
)
def test_control_characters_in_the_openai_endpoint_are_a_422_not_a_500(
    http: TestClient, body: dict, field: str
) -> None:
    before = state()
    r = http.post("/v1/audio/speech", json=body)
    assert r.status_code == 422, r.text
    assert f"{field}: contains a control character (only tab" in r.json()["error"]["message"]
    assert state() == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # Longer than the database column: PostgreSQL refused it with a 500.
        ({"text": "hi", "language": "en-" + "abcdefgh-" * 2 + "x1"}, "language: String should have at most 16 char"),
        (
            {"text": "hi", "callback_url": "http://127.0.0.1/" + "a" * 1990},
            "callback_url: URL should have at most 2000 characters",
        ),
        ({"text": "hi", "voice": "v" * 201}, "voice: String should have at most 200 characters"),
        ({"text": "hi", "language": "english!"}, "language: String should match pattern"),
        # The schema counts the text as sent; normalising it to one letter once let it through.
        ({"text": "a" + " " * 200_000}, "text is 200001 characters; the maximum is 200000"),
    ],
)
def test_what_the_schema_refuses_the_api_refuses(http: TestClient, body: dict, message: str) -> None:
    before = state()
    r = http.post("/v1/jobs", json=body)
    assert r.status_code == 422 and message in r.json()["error"], r.text
    assert state() == before


@pytest.mark.parametrize(
    ("shared", "message"),
    [
        ({"format": "ogg*"}, "format 'ogg*' is not supported"),
        ({"speed": 9}, "speed 9.0 is out of range"),
        ({"sample_rate": 1}, "sample_rate 1 is out of range"),
        ({"quality": "ultra"}, "quality 'ultra' is not a tier"),
    ],
)
def test_a_batchs_shared_options_are_checked_even_beside_items(http: TestClient, shared: dict, message: str) -> None:
    """The schema refuses a bad shared option whether the batch has items or phrases (the fuzzer
    found a batch of items with `"format": "ogg*"` accepted)."""
    before = state()
    r = http.post("/v1/batches", json={"items": [{"text": "Each item has its own options."}], **shared})
    assert r.status_code == 422 and message in r.json()["error"], r.text
    assert state() == before


def test_a_batch_of_neither_kind_is_named_without_pydantics_prefix(http: TestClient) -> None:
    r = http.post("/v1/batches", json={"format": "wav"})
    assert r.status_code == 422 and r.json()["error"] == "body: give either items or phrases (with voices)"


def test_a_voice_language_longer_than_its_column_is_refused(http: TestClient) -> None:
    form = {"name": "Narrator", "language": "en-abcdefgh-abcdefgh", "consent": "true"}
    r = http.post("/v1/voices", data=form, files={"file": ("a.wav", b"RIFF", "audio/wav")})
    assert r.status_code == 422 and r.json()["error"] == "language: String should have at most 16 characters"


def test_a_file_sent_as_text_is_named_without_a_python_repr(http: TestClient) -> None:
    r = http.post("/v1/voices", data={"name": "Narrator", "language": "en", "consent": "true", "file": "null"})
    assert r.status_code == 422
    assert r.json()["error"] == "file: must be a file, sent as a file part of a multipart/form-data body"


@pytest.mark.parametrize("consent", ["0", "1", "yes", "True", "on"])
def test_a_form_boolean_is_true_or_false_as_the_schema_says(http: TestClient, consent: str) -> None:
    form = {"name": "Narrator", "language": "en", "consent": consent}
    created = http.post("/v1/voices", data=form, files={"file": ("a.wav", b"RIFF", "audio/wav")})
    updated = http.patch("/v1/voices/nobody", data={"consent": consent})
    for r in (created, updated):
        assert r.status_code == 422 and r.json()["error"] == "consent: must be true or false", r.text


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("rate", [8000, 9000, 14003, 23724, 44100, 47999, 48000])
def test_every_format_encodes_at_any_rate_the_schema_allows(fmt: str, rate: int) -> None:
    """MP3 at 14003 Hz, or AAC at 23724, failed on every engine: the codec takes a few rates only."""
    t = np.arange(2400) / 24000
    data, got = encode(Audio((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 24000), fmt, rate)
    assert len(data) > 0 and got == output_rate(fmt, 24000, rate) and rate <= got <= 48000
    if FORMATS[fmt].container not in (None, "RAW"):  # raw PCM has no header to read a rate from
        assert sf.info(io.BytesIO(data)).samplerate == got
