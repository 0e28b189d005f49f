"""Voices: the built-in ones, and a tenant's own, cloned from uploaded samples."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Response, UploadFile
from pydantic import BeforeValidator
from sqlalchemy import select

from voicefarm.api.deps import DB, Caller
from voicefarm.audio.reference import Analysis
from voicefarm.engines.base import Voice
from voicefarm.errors import InvalidRequest, NotFound
from voicefarm.fleet.catalog import Catalog, get_catalog
from voicefarm.jobs.keys import normalise_language
from voicefarm.library import voices
from voicefarm.library.cache import get_cache
from voicefarm.schemas import LANGUAGE_TAG, PRINTABLE, ClonedVoiceOut, Problem, SampleAnalysis, VoiceOut
from voicefarm.settings import get_settings
from voicefarm.store.models import ClonedVoice
from voicefarm.store.objects import get_store

router = APIRouter(prefix="/v1", tags=["voices"])
errors: dict[int | str, dict[str, Any]] = {code: {"model": Problem} for code in (401, 404, 413, 415, 422)}


def _true_or_false(value: object) -> object:
    if isinstance(value, str) and value not in ("true", "false"):
        raise ValueError("must be true or false")
    return value


# A form carries a boolean as text: the two words the schema's boolean stands for, not the 0, no
# or off that pydantic would also read.
FormBool = Annotated[bool, BeforeValidator(_true_or_false)]


def cloned_out(row: ClonedVoice) -> ClonedVoiceOut:
    settings = get_settings()
    return ClonedVoiceOut(
        id=row.id,
        language=row.language,
        name=row.name,
        engine=None,
        sample_rate=settings.voice_sample_rate,
        cloned=True,
        version=str(row.version),
        fallback_voice=row.fallback_voice,
        description=row.description,
        created_at=row.created_at,
        analysis=SampleAnalysis(**row.analysis),
        recommended_seconds=f"{settings.voice_recommended_seconds:g}–{settings.voice_max_seconds:g} s of clean speech",
    )


def built_in_out(catalog: Catalog, engine: str, v: Voice) -> VoiceOut:
    return VoiceOut(
        id=v.id,
        language=v.language,
        name=v.name,
        engine=engine,
        sample_rate=v.sample_rate,
        available=engine in catalog.live,
    )


@router.get("/voices", response_model=list[VoiceOut])
def list_voices(s: DB, caller: Caller) -> list[VoiceOut]:
    """Built-in voices of every known engine (`available` false while it has no live worker),
    then the caller's cloned voices."""
    catalog = get_catalog()
    built_in = [built_in_out(catalog, engine, v) for engine, v in catalog.voices()]
    own = s.scalars(
        select(ClonedVoice).where(ClonedVoice.tenant_id == caller.tenant_id).order_by(ClonedVoice.created_at)
    ).all()
    return built_in + [cloned_out(row) for row in own]


def _fallback(voice_id: str | None) -> str:
    if voice_id is None:
        # Not checked: only an engine that cannot clone speaks it, and a farm without one (XTTS
        # alone) advertises no built-in voice to check it against.
        return get_settings().default_voice
    if get_catalog().voice(voice_id) is None:
        raise InvalidRequest(f"fallback_voice {voice_id!r} is not a built-in voice")
    return voice_id


def _sample(file: UploadFile) -> tuple[bytes, Analysis]:
    limit = get_settings().voice_max_upload_bytes
    data = file.file.read(limit + 1)  # never more than the limit in memory
    return voices.accept_sample(data, get_settings())


def _consent(consent: bool) -> None:
    if not consent:
        raise InvalidRequest("consent must be true: the uploader attests the speaker agreed to be cloned")


@router.post("/voices", status_code=201, response_model=ClonedVoiceOut, responses=errors)
def upload_voice(
    s: DB,
    caller: Caller,
    name: Annotated[str, Form(min_length=1, max_length=200, pattern=PRINTABLE)],
    language: Annotated[str, Form(pattern=LANGUAGE_TAG, max_length=16, description="BCP-47 tag, e.g. en or en-US")],
    file: Annotated[UploadFile, File(description="WAV, FLAC, MP3 or OGG; 3–30 s of one speaker")],
    consent: Annotated[FormBool, Form(description="Must be true: the speaker agreed to be cloned")],
    description: Annotated[str | None, Form(max_length=2000, pattern=PRINTABLE)] = None,
    fallback_voice: Annotated[
        str | None, Form(max_length=200, pattern=PRINTABLE, description="Built-in voice for engines that cannot clone")
    ] = None,
) -> ClonedVoiceOut:
    """Upload a reference sample. It is analysed and refused, with the reason, when it cannot
    clone a voice; nothing is stored for a refused upload."""
    _consent(consent)
    fallback = _fallback(fallback_voice)
    sample, analysis = _sample(file)
    row = voices.create(
        s,
        get_store(),
        tenant_id=caller.tenant_id,
        name=name.strip(),
        language=normalise_language(language),
        description=description,
        fallback_voice=fallback,
        sample=sample,
        analysis=analysis,
    )
    return cloned_out(row)


def _owned(s: DB, caller: Caller, voice_id: str) -> ClonedVoice:
    row = voices.owned(s, caller.tenant_id, voice_id)
    if row is None:
        raise NotFound(f"no voice {voice_id!r}")
    return row


@router.get("/voices/{voice_id}", response_model=ClonedVoiceOut | VoiceOut, responses=errors)
def get_voice(voice_id: str, s: DB, caller: Caller) -> ClonedVoiceOut | VoiceOut:
    catalog = get_catalog()
    for engine, v in catalog.voices():
        if v.id == voice_id:
            return built_in_out(catalog, engine, v)
    return cloned_out(_owned(s, caller, voice_id))


@router.get("/voices/{voice_id}/sample", responses={**errors, 200: {"content": {"audio/flac": {}}}})
def get_voice_sample(voice_id: str, s: DB, caller: Caller) -> Response:
    """A cloned voice's current sample, as stored: mono FLAC at the farm's voice rate. Its
    bytes, never a redirect to the store: it is the speaker's, and only its owner fetches it."""
    if get_catalog().voice(voice_id) is not None:
        raise NotFound(f"{voice_id!r} is a built-in voice: it has no uploaded sample")
    return Response(get_store().get(_owned(s, caller, voice_id).sample_key), media_type="audio/flac")


@router.patch("/voices/{voice_id}", response_model=ClonedVoiceOut, responses=errors)
def update_voice(
    voice_id: str,
    s: DB,
    caller: Caller,
    # FastAPI reads an empty form field as one not sent: it changes nothing.
    name: Annotated[str | None, Form(max_length=200, pattern=PRINTABLE, description="Empty: unchanged")] = None,
    description: Annotated[str | None, Form(max_length=2000, pattern=PRINTABLE)] = None,
    fallback_voice: Annotated[str | None, Form(max_length=200, pattern=PRINTABLE)] = None,
    file: Annotated[UploadFile | None, File(description="A new sample: makes a new voice version")] = None,
    consent: Annotated[FormBool, Form(description="Must be true with a new sample")] = False,
) -> ClonedVoiceOut:
    """Rename or re-describe a voice, or replace its sample (a new version)."""
    row = _owned(s, caller, voice_id)
    if file is not None:
        _consent(consent)
        sample, analysis = _sample(file)
    if name is not None:
        row.name = name.strip()
    if description is not None:
        row.description = description
    if fallback_voice is not None:
        row.fallback_voice = _fallback(fallback_voice)
    if file is not None:
        voices.replace_sample(s, get_store(), row, sample, analysis)
    s.commit()
    return cloned_out(row)


@router.delete("/voices/{voice_id}", status_code=204, responses=errors)
def delete_voice(voice_id: str, s: DB, caller: Caller) -> Response:
    """Delete a voice and purge everything of it: the sample, its speaker latents, every
    rendition made with it (objects, cache keys, URLs) and the jobs that used it."""
    voices.purge(s, get_store(), get_cache(), _owned(s, caller, voice_id))
    return Response(status_code=204)
