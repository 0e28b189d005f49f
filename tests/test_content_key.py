"""What makes two requests the same audio."""

from __future__ import annotations

from voicefarm.catalog import Route
from voicefarm.engines.base import Voice
from voicefarm.jobs import content_key, normalise_language, normalise_text

VOICE = Voice("v", "en-US", version="1")
ROUTE = Route("piper", "piper-tts-1.8.0", VOICE)


def key(voice: Voice = VOICE, **changes) -> str:
    parts = dict(text="Hello there.", language="en-US", speed=1.0, format="wav", route=Route(ROUTE.engine, ROUTE.model_version, voice))
    return content_key(**{**parts, **changes})


def test_every_part_of_the_request_changes_the_key() -> None:
    variants = [
        key(),
        key(text="Hello there!"),
        key(voice=Voice("v", "en-US", version="2")),
        key(voice=Voice("w", "en-US", version="1")),
        key(language="en-GB"),
        key(speed=1.25),
        key(format="mp3"),
        key(route=Route("xtts", "piper-tts-1.8.0", VOICE)),
        key(route=Route("piper", "piper-tts-1.9.0", VOICE)),
    ]
    assert len(set(variants)) == len(variants)
    assert all(len(k) == 64 for k in variants)


def test_normalisation() -> None:
    assert normalise_text("  Hello\n\tthere.  ") == "Hello there."
    assert normalise_text("cafe\u0301") == "caf\u00e9"  # NFC: one key for both spellings
    assert normalise_language("EN_us") == "en-US"
    assert normalise_language("en") == "en"
    assert key(speed=1.0) == key(speed=1.0000001)
