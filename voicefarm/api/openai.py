"""OpenAI's speech endpoint, `POST /v1/audio/speech`, so OpenAI's clients can use the farm unchanged.

It answers with the audio itself: from the cache at once, else it submits a job the way
`POST /v1/jobs` does and waits for it, up to `openai_wait_seconds` (then 504 with the job id, for
the caller to poll). Errors come in OpenAI's shape, `{"error": {"message", "type", ...}}`, since
its clients read the message from there.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from voicefarm.api.deps import DB, Caller
from voicefarm.api.jobs import accept
from voicefarm.audio import content_type
from voicefarm.cache import CachedAudio
from voicefarm.errors import InvalidRequest
from voicefarm.models import ACTIVE, Job, JobStatus
from voicefarm.schemas import JobRequest
from voicefarm.settings import Settings, get_settings
from voicefarm.storage import get_store

OPENAI_VOICES = (
    "alloy",
    "ash",
    "ballad",
    "cedar",
    "coral",
    "echo",
    "fable",
    "marin",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
)
# OpenAI's pcm is raw 16-bit at 24 kHz; the farm's is at the engine's rate unless asked.
OPENAI_RATES = {"pcm": 24000}
POLL_SECONDS = 0.05


class OpenAIErrors(APIRoute):
    """The farm's own error handlers decide status and message; this puts the message where
    OpenAI's clients look for it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handle(request)
            except Exception as e:
                handlers = request.app.exception_handlers
                farm = next((handlers[t] for t in type(e).__mro__ if t in handlers), None)
                if farm is None:
                    raise
                answer = await farm(request, e)
                error = json.loads(answer.body)["error"]
                return openai_error(answer.status_code, error if isinstance(error, dict) else {"message": error})

        return route


def openai_error(status: int, error: dict[str, Any]) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"type": kind, "param": None, "code": None, **error}}, status_code=status)


router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIErrors)


class VoiceRef(BaseModel):
    id: str


class SpeechRequest(BaseModel):
    # OpenAI's clients send fields the farm has no use for, such as instructions: ignored.
    model_config = ConfigDict(extra="ignore")

    model: str = Field(description="tts-1 (the fast tier), tts-1-hd (high), or a quality tier by name.")
    input: str = Field(description="What to say.")
    voice: str | VoiceRef = Field(description="An OpenAI voice name, or a farm voice id (built-in or cloned).")
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(1.0, description="Speaking rate; the farm takes its own range, not OpenAI's 0.25–4.")
    stream_format: Literal["audio"] = Field("audio", description="Server-sent events are not offered.")


class OpenAIProblem(BaseModel):
    error: dict[str, Any]


def job_request(body: SpeechRequest, settings: Settings) -> JobRequest:
    """The farm's request for an OpenAI one: its model names a tier, its voice names a farm voice."""
    quality = settings.openai_models.get(body.model, body.model)
    if quality not in settings.tiers:
        raise InvalidRequest(
            f"model {body.model!r} is not supported; use one of {', '.join([*settings.openai_models, *settings.tiers])}"
        )
    voice = body.voice if isinstance(body.voice, str) else body.voice.id
    if voice in OPENAI_VOICES:
        voice = settings.openai_voices.get(voice, settings.default_voice)
    return JobRequest(
        text=body.input,
        voice=voice,
        quality=quality,
        format=body.response_format,
        speed=body.speed,
        sample_rate=OPENAI_RATES.get(body.response_format),
    )


def job_state(s: Session, job_id: str) -> Row[str, str | None, str | None]:
    try:
        return s.execute(select(Job.status, Job.object_key, Job.error).where(Job.id == job_id)).one()
    finally:
        s.rollback()  # back to the pool between polls: a long wait must not hold a connection


async def finished_audio(s: Session, job_id: str, timeout: float) -> str:
    """The object key of the job's audio once it succeeds; 502 if it fails; 504, naming the job,
    if it is still running after `timeout` seconds. Each poll is one query on a thread."""
    deadline = time.monotonic() + timeout
    while True:
        state = await run_in_threadpool(job_state, s, job_id)
        if state.status not in ACTIVE:
            break
        if time.monotonic() >= deadline:
            raise HTTPException(
                504,
                {
                    "message": f"job {job_id} is still {state.status} after {timeout:g} s; poll GET /v1/jobs/{job_id}",
                    "job_id": job_id,
                },
            )
        await asyncio.sleep(POLL_SECONDS)
    if state.status != JobStatus.succeeded.value or not state.object_key:
        raise HTTPException(502, {"message": f"job {job_id} failed: {state.error}", "job_id": job_id})
    return str(state.object_key)


@router.post(
    "/audio/speech",
    responses={
        200: {"content": {"audio/mpeg": {}}},
        **{code: {"model": OpenAIProblem} for code in (400, 401, 422, 502, 503, 504)},
    },
)
async def create_speech(body: SpeechRequest, s: DB, caller: Caller) -> Response:
    """Synthesize `input` and answer with the audio bytes (OpenAI's `audio.speech.create`)."""
    settings = get_settings()
    result = await accept(s, caller.tenant_id, job_request(body, settings))
    if isinstance(result, CachedAudio):
        object_key = result.object_key
    else:
        object_key = await finished_audio(s, result.id, settings.openai_wait_seconds)
    audio = await run_in_threadpool(get_store().get, object_key)
    return Response(audio, media_type=content_type(body.response_format))
