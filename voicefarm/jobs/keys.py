"""What makes two requests the same speech (the source key) and the same file (the content key)."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata

from voicefarm.fleet.catalog import Candidate


def normalise_text(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip()


def normalise_language(tag: str) -> str:
    parts = tag.replace("_", "-").split("-")
    return "-".join([parts[0].lower(), *(p.upper() if len(p) == 2 else p for p in parts[1:])])


def source_key(*, text: str, language: str, speed: float, candidate: Candidate, scope: str | None = None) -> str:
    """sha256 over what the engine synthesizes: equal keys mean the same speech, in any format.
    `scope` confines the key to one tenant's private cache (voicefarm.tenancy.admission.Policy); a shared
    key has none, so keys made before cache scopes existed stay valid."""
    canonical: dict[str, object] = {
        "text": text,
        "voice": candidate.voice.id,
        "voice_version": candidate.voice.version,
        "language": language,
        "speed": round(speed, 3),
        "engine": candidate.engine,
        "model_version": candidate.model_version,
    }
    if scope is not None:
        canonical["scope"] = scope
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def content_key(source: str, format: str, sample_rate: int | None) -> str:
    """The key of one rendition of that speech: equal keys mean interchangeable files."""
    return hashlib.sha256(f"{source}:{format}:{sample_rate or 'native'}".encode()).hexdigest()
