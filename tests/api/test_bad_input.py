"""Bad input gets a 4xx whose message names the problem, and nothing is stored or enqueued."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from voicefarm import db, stats
from voicefarm.models import Job
from voicefarm.settings import get_settings


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
        ({"text": "a" * 5001}, 422, "maximum is 5000"),
        ({"text": "hi", "voice": "nobody"}, 422, "unknown voice 'nobody'"),
        ({"text": "hi", "language": "fr"}, 422, "language 'fr' is not supported"),
        ({"text": "hi", "format": "wma"}, 422, "format 'wma' is not supported"),
        ({"text": "hi", "speed": 5}, 422, "speed 5.0 is out of range"),
        ({"text": "hi", "speed": 0}, 422, "speed 0.0 is out of range"),
        ({"text": "hi", "quality": "ultra"}, 422, "quality 'ultra' is not a tier"),
        ({"text": "hi", "speed": "fast"}, 422, "speed: Input should be a valid number"),
        ({"voice": "en_US-joe-medium"}, 422, "text: Field required"),
        ({"text": "hi", "colour": "blue"}, 422, "colour: Extra inputs are not permitted"),
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
