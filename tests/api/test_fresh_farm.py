"""A farm whose configured engines have not all advertised yet: a voice it does not know may be
one of theirs, so a submission in it is a 503 with Retry-After (try again), never a 4xx (do not),
and nothing of it is kept or enqueued. Once every configured engine of the request's tier has
advertised, an unknown voice is the client's mistake again: a 422."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from voicefarm.fleet import catalog, heartbeat
from voicefarm.settings import get_settings
from voicefarm.store import db
from voicefarm.store.models import Batch, EngineCapabilities, Job
from voicefarm.telemetry import stats


def state() -> tuple[int, int, int]:
    """Jobs and batches recorded, and messages on the Piper queue."""
    with db.session() as s:
        jobs, batches = s.scalar(select(func.count(Job.id))), s.scalar(select(func.count(Batch.id)))
    return jobs, batches, stats.queue_depths(get_settings())["piper"]


@pytest.fixture
def fresh(app: TestClient) -> Iterator[None]:
    """The farm before its first worker advertised: no engine's capabilities known. The API
    tier's Piper capabilities come back afterwards."""
    with db.session() as s:
        kept = {row.engine: row.capabilities for row in s.scalars(select(EngineCapabilities))}
        s.execute(delete(EngineCapabilities))
    catalog.catalogs.cache_clear()
    try:
        yield
    finally:
        with db.session() as s:
            for engine, capabilities in kept.items():
                heartbeat.remember(s, engine, capabilities)
        catalog.catalogs.cache_clear()


DOCUMENT = "A sentence of a long text. " * 200  # over segment_chars: a document, segmented

SUBMISSIONS: list[tuple[str, dict[str, Any]]] = [
    ("/v1/jobs", {"text": "The first job of a fresh farm."}),
    ("/v1/jobs", {"text": "Hello.", "voice": "en_US-joe-medium"}),
    ("/v1/jobs", {"text": DOCUMENT}),
    ("/v1/batches", {"phrases": ["One.", "Two."], "voices": ["en_US-joe-medium"]}),
    ("/v1/audio/speech", {"model": "tts-1", "voice": "alloy", "input": "Hello."}),
]


@pytest.mark.usefixtures("fresh")
@pytest.mark.parametrize(("path", "body"), SUBMISSIONS)
def test_a_voice_an_engine_has_yet_to_advertise_is_a_503_to_retry(
    http: TestClient, path: str, body: dict[str, Any]
) -> None:
    assert len(DOCUMENT) > get_settings().segment_chars
    before = state()
    r = http.post(path, json=body)
    assert r.status_code == 503, r.text
    assert int(r.headers["Retry-After"]) >= 1
    error = r.json()["error"]
    message = error["message"] if isinstance(error, dict) else error  # OpenAI's endpoint has OpenAI's shape
    assert "unknown voice 'en_US-joe-medium'" in message and "not yet advertised: piper" in message, message
    assert state() == before


@pytest.fixture
def xtts_later(monkeypatch: pytest.MonkeyPatch) -> None:
    """XTTS configured too, alone in a tier of its own, and never advertised here."""
    settings = get_settings()
    monkeypatch.setattr(settings, "engines", [*settings.engines, "xtts"])
    monkeypatch.setattr(settings, "tiers", {**settings.tiers, "later": ["xtts"]})


@pytest.mark.usefixtures("xtts_later")
def test_a_tier_whose_engine_has_yet_to_advertise_is_a_503_to_retry(http: TestClient) -> None:
    before = state()
    r = http.post("/v1/jobs", json={"text": "Hello.", "quality": "later"})
    assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1
    assert "no engine in quality tier 'later' can speak" in r.json()["error"]
    assert "not yet advertised: xtts" in r.json()["error"]
    assert state() == before


@pytest.mark.usefixtures("xtts_later")
def test_once_the_tiers_engines_have_advertised_an_unknown_voice_is_a_422(http: TestClient) -> None:
    """XTTS has yet to advertise, but it has no place in "fast" (Piper, then Google, not
    configured): an engine that is never started must not make every typo a 503 for good."""
    before = state()
    r = http.post("/v1/jobs", json={"text": "Hello.", "voice": "nobody", "quality": "fast"})
    assert r.status_code == 422 and "Retry-After" not in r.headers
    assert "unknown voice 'nobody'" in r.json()["error"]
    assert state() == before


@pytest.mark.usefixtures("fresh")
def test_a_voice_upload_that_names_no_fallback_keeps_the_default_where_no_engine_has_voices(
    http: TestClient,
) -> None:
    """A farm of cloning engines alone (XTTS) advertises no built-in voice to check a fallback
    against: an upload naming none is kept with the farm's default; one naming another is refused."""
    from bench.gpu_report import reference_sample

    form = {"name": "mine", "language": "en", "consent": "true"}
    sample = {"file": ("voice.wav", reference_sample(), "audio/wav")}
    refused = http.post("/v1/voices", data={**form, "fallback_voice": "nobody"}, files=sample)
    assert refused.status_code == 422 and "fallback_voice 'nobody'" in refused.json()["error"], refused.text
    kept = http.post("/v1/voices", data=form, files=sample)
    assert kept.status_code == 201, kept.text
    assert kept.json()["fallback_voice"] == get_settings().default_voice
    assert http.delete(f"/v1/voices/{kept.json()['id']}").status_code == 204
