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
