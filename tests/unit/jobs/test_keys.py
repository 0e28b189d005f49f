"""What makes two requests the same speech, and the same file."""

from __future__ import annotations

from voicefarm.engines.base import Voice
from voicefarm.fleet.catalog import Candidate
from voicefarm.jobs.keys import content_key, normalise_language, normalise_text, source_key

VOICE = Voice("v", "en-US", version="1")
CANDIDATE = Candidate("piper", "piper-tts-1.8.0", VOICE)


def source(voice: Voice = VOICE, **changes) -> str:
    parts = dict(
        text="Hello there.",
        language="en-US",
        speed=1.0,
        candidate=Candidate(CANDIDATE.engine, CANDIDATE.model_version, voice),
    )
    return source_key(**{**parts, **changes})


def test_every_part_of_the_speech_changes_the_source_key() -> None:
    variants = [
        source(),
        source(text="Hello there!"),
        source(voice=Voice("v", "en-US", version="2")),
        source(voice=Voice("w", "en-US", version="1")),
        source(language="en-GB"),
        source(speed=1.25),
        source(candidate=Candidate("xtts", "piper-tts-1.8.0", VOICE)),
        source(candidate=Candidate("piper", "piper-tts-1.9.0", VOICE)),
    ]
    assert len(set(variants)) == len(variants)
    assert all(len(k) == 64 for k in variants)


def test_a_private_scope_gives_each_tenant_its_own_keys_and_shared_keys_stay_as_they_were() -> None:
    shared, a, b = source(), source(scope="tenant-a:salt-a"), source(scope="tenant-b:salt-b")
    assert len({shared, a, b}) == 3
    assert source(scope=None) == shared  # keys made before scopes existed still find their audio
    assert content_key(a, "wav", None) != content_key(shared, "wav", None)


def test_format_and_rate_change_the_file_not_the_speech() -> None:
    keys = {content_key(source(), fmt, rate) for fmt in ("wav", "mp3") for rate in (None, 16000)}
    assert len(keys) == 4
    assert content_key(source(), "wav", None) == content_key(source(), "wav", None)


def test_normalisation() -> None:
    assert normalise_text("  Hello\n\tthere.  ") == "Hello there."
    assert normalise_text("cafe\u0301") == "caf\u00e9"  # NFC: one key for both spellings
    assert normalise_language("EN_us") == "en-US"
    assert normalise_language("en") == "en"
    assert source(speed=1.0) == source(speed=1.0000001)
