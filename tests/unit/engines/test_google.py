"""The Google Cloud TTS engine, through the real client, against a local fake server.

Each failure the farm must fall back from (400, 503, no answer) raises promptly with a clear
error; only the transient one is retried, and a bounded number of times.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.fake_google import SECONDS_PER_CHAR, FakeTextToSpeech, service_account_file
from voicefarm.engines.base import SynthesisRequest
from voicefarm.engines.google import MAX_INPUT_BYTES, GoogleEngine, GoogleTTSError

TIMEOUT = 1.0
RETRIES = 2


@pytest.fixture(autouse=True)
def local_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse to resolve any host but 127.0.0.1, and fail the test if something tried."""
    tried: list[str] = []
    resolve = socket.getaddrinfo

    def guarded(host: str | bytes | None, *args: Any, **kwargs: Any) -> Any:
        if host not in ("127.0.0.1", b"127.0.0.1"):
            tried.append(repr(host))
            raise socket.gaierror(f"{host!r}: only 127.0.0.1 in these tests")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    yield
    assert not tried, f"tried to reach {tried}"


@pytest.fixture
def fake() -> Iterator[FakeTextToSpeech]:
    with FakeTextToSpeech() as server:
        yield server


@pytest.fixture
def key_file(fake: FakeTextToSpeech, tmp_path: Path) -> Path:
    return service_account_file(fake, tmp_path / "service-account.json")


@pytest.fixture
def engine(fake: FakeTextToSpeech, key_file: Path) -> GoogleEngine:
    engine = GoogleEngine(
        credentials_file=key_file, endpoint=fake.url, timeout=TIMEOUT, retries=RETRIES, sample_rate=16000, backoff=0.05
    )
    engine.load()
    return engine


def say(
    text: str = "Hello there.",
    voice: str = "google:en-US-Standard-C",
    language: str = "en-US",
    speed: float = 1.0,
    options: dict[str, float | int] | None = None,
) -> SynthesisRequest:
    return SynthesisRequest(text=text, voice=voice, language=language, speed=speed, options=options or {})


def failing(engine: GoogleEngine, match: str) -> float:
    """Seconds until synthesize raised a GoogleTTSError matching `match`."""
    started = time.monotonic()
    with pytest.raises(GoogleTTSError, match=match):
        engine.synthesize(say())
    return time.monotonic() - started


def test_synthesizes_with_the_requested_voice_rate_speed_and_pitch(
    engine: GoogleEngine, fake: FakeTextToSpeech
) -> None:
    text = "The quick brown fox."
    audio = engine.synthesize(
        say(text, voice="google:en-GB-Standard-A", language="en-GB", speed=1.25, options={"pitch": -2.5})
    )

    assert audio.sample_rate == 16000
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert len(audio.samples) == int(len(text) * SECONDS_PER_CHAR * 16000)
    assert 0.45 < np.abs(audio.samples).max() <= 0.5  # the fake's tone, decoded from 16-bit PCM
    [sent] = fake.requests
    assert sent["body"] == {
        "input": {"text": text},
        "voice": {"languageCode": "en-GB", "name": "en-GB-Standard-A"},
        "audioConfig": {"audioEncoding": "LINEAR16", "sampleRateHertz": 16000, "speakingRate": 1.25, "pitch": -2.5},
    }
    assert sent["headers"]["authorization"].startswith("Bearer ")  # the fake checked its signature


def test_other_engines_voices_are_spoken_by_language(engine: GoogleEngine, fake: FakeTextToSpeech) -> None:
    engine.synthesize(say(voice="en_US-joe-medium", language="en-US"))
    engine.synthesize(say(voice="en_US-joe-medium", language="en-GB"))  # a full tag wins over its language
    engine.synthesize(say(voice="some-cloned-voice", language="de"))
    assert [r["body"]["voice"]["name"] for r in fake.requests] == [
        "en-US-Standard-C",
        "en-GB-Standard-A",
        "de-DE-Standard-A",
    ]

    with pytest.raises(GoogleTTSError, match="no Google voice configured for language 'sw'"):
        engine.synthesize(say(voice="en_US-joe-medium", language="sw"))
    assert len(fake.requests) == 3


def test_400_fails_at_once(engine: GoogleEngine, fake: FakeTextToSpeech) -> None:
    fake.mode = "400"
    seconds = failing(engine, r"not retried.*400.*does not exist")
    assert len(fake.requests) == 1
    assert seconds < TIMEOUT


def test_503_is_retried_a_bounded_number_of_times(engine: GoogleEngine, fake: FakeTextToSpeech) -> None:
    fake.mode = "503"
    seconds = failing(engine, rf"failed {RETRIES + 1} times.*503.*unavailable")
    assert len(fake.requests) == RETRIES + 1
    assert seconds < TIMEOUT


def test_a_transient_503_is_retried_until_it_succeeds(engine: GoogleEngine, fake: FakeTextToSpeech) -> None:
    fake.modes = ["503", "503"]
    audio = engine.synthesize(say("Hi."))
    assert len(fake.requests) == 3
    assert len(audio.samples) == int(3 * SECONDS_PER_CHAR * 16000)


def test_a_server_that_never_answers_times_out(engine: GoogleEngine, fake: FakeTextToSpeech) -> None:
    fake.mode = "hang"
    seconds = failing(engine, rf"did not answer within {TIMEOUT:g} s")
    # Not retried: the chain's next engine is a better use of the time than a second wait.
    assert len(fake.requests) == 1
    assert TIMEOUT <= seconds < TIMEOUT + 1.0


def test_rejected_credentials_fail_the_call(engine: GoogleEngine, fake: FakeTextToSpeech, tmp_path: Path) -> None:
    service_account_file(fake, tmp_path / "another.json")  # the fake now trusts another key only
    seconds = failing(engine, r"not retried.*401.*invalid credentials")
    assert seconds < TIMEOUT


def test_text_over_the_request_limit_is_sent_in_pieces(engine: GoogleEngine, fake: FakeTextToSpeech) -> None:
    text = "これは長い文章です。" * 300  # 3,000 characters, 9,000 bytes
    audio = engine.synthesize(say(text, voice="google:ja-JP-Standard-A", language="ja"))
    sent = [r["body"]["input"]["text"] for r in fake.requests]
    assert len(sent) > 1
    assert all(len(piece.encode()) <= MAX_INPUT_BYTES for piece in sent)
    assert "".join(sent) == text
    assert audio.duration == pytest.approx(len(text) * SECONDS_PER_CHAR, abs=0.01 * len(sent))


def test_capabilities_come_from_the_voice_map() -> None:
    engine = GoogleEngine(
        voices={"en": "en-US-Neural2-F", "en-US": "en-US-Neural2-F", "zh": "cmn-CN-Standard-A"}, sample_rate=22050
    )
    caps = engine.capabilities()
    assert caps.languages == {"en", "zh"}
    assert {(v.id, v.language, v.sample_rate) for v in caps.voices} == {
        ("google:en-US-Neural2-F", "en-US", 22050),
        ("google:cmn-CN-Standard-A", "zh-CN", 22050),  # the farm's language tag, not Google's
    }
    assert not caps.cloning
    assert caps.model_version == "google-tts-v1"


def test_unavailable_without_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))  # no gcloud login here
    assert "no Google credentials" in (GoogleEngine().capabilities().unavailable or "")

    missing = tmp_path / "missing.json"
    assert f"{missing} does not exist" in (GoogleEngine(credentials_file=missing).capabilities().unavailable or "")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(missing))
    assert f"{missing}, which does not exist" in (GoogleEngine().capabilities().unavailable or "")


def test_available_with_a_gcloud_login(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
    (tmp_path / "application_default_credentials.json").write_text("{}")
    assert GoogleEngine().capabilities().unavailable is None


def test_application_default_credentials_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, fake: FakeTextToSpeech, key_file: Path
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    engine = GoogleEngine(endpoint=fake.url, timeout=TIMEOUT)
    assert engine.capabilities().unavailable is None
    engine.load()
    assert engine.synthesize(say()).duration > 0


def test_importing_and_capabilities_leave_the_client_unloaded() -> None:
    code = (
        "import sys\n"
        "from voicefarm.engines.google import GoogleEngine\n"
        "GoogleEngine().capabilities()\n"
        "print(sorted(m for m in sys.modules if m.startswith(('google.cloud', 'google.auth', 'grpc'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"
