"""Voices the farm can speak in now."""

from __future__ import annotations

from fastapi import APIRouter

from voicefarm.api.deps import Caller, get_catalog
from voicefarm.schemas import VoiceOut

router = APIRouter(prefix="/v1", tags=["voices"])


@router.get("/voices", response_model=list[VoiceOut])
def list_voices(caller: Caller) -> list[VoiceOut]:
    return [
        VoiceOut(id=v.id, language=v.language, name=v.name, engine=engine, sample_rate=v.sample_rate)
        for engine, v in get_catalog().voices()
    ]
