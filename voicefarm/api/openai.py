"""OpenAI's speech endpoint, `POST /v1/audio/speech`, so OpenAI's clients can use the farm unchanged.

It answers with the audio itself: from the cache at once, else it submits a job the way
`POST /v1/jobs` does and streams the audio as the job makes it (`stream_format: "audio"`, the
bytes; `"sse"`, OpenAI's `speech.audio.delta` events and a final `speech.audio.done`, with the
words' times as a `speech.timestamps` event before it when `timestamps` is true). It waits
for the first audio up to `openai_wait_seconds` (then 504 with the job id, for the caller to
poll). FLAC cannot be streamed: it comes whole once stored. Errors come in OpenAI's shape,
`{"error": {"message", "type", ...}}`, since its clients read the message from there.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlalchemy.orm import Session

from voicefarm.api.deps import DB, Caller
from voicefarm.api.streams import job_state, live_chunks, sse, started, stored_chunks
from voicefarm.audio.codec import content_type
from voicefarm.audio.encoder import STREAM_FORMATS
from voicefarm.errors import JobFailed, NotReady
from voicefarm.jobs import submit
from voicefarm.library import timestamps
from voicefarm.library.cache import CachedAudio
from voicefarm.schemas import RETRY_AFTER, Name, Text
from voicefarm.settings import get_settings
from voicefarm.store.models import ACTIVE, Alignment, Job, JobStatus

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
                message = error if isinstance(error, dict) else {"message": error}
                retry = {"Retry-After": answer.headers["retry-after"]} if "retry-after" in answer.headers else None
                return openai_error(answer.status_code, message, retry)

        return route


def openai_error(status: int, error: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse(
        {"error": {"type": kind, "param": None, "code": None, **error}}, status_code=status, headers=headers
    )


router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIErrors)


class VoiceRef(BaseModel):
    id: Name


class SpeechRequest(BaseModel):
    # OpenAI's clients send fields the farm has no use for, such as instructions: ignored.
    model_config = ConfigDict(extra="ignore")

    model: str = Field(description="tts-1 (the fast tier), tts-1-hd (high), or a quality tier by name.")
    input: Text = Field(description="What to say.")
    voice: Name | VoiceRef = Field(description="An OpenAI voice name, or a farm voice id (built-in or cloned).")
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(1.0, description="Speaking rate; the farm takes its own range, not OpenAI's 0.25–4.")
    stream_format: Literal["audio", "sse"] = Field(
        "audio",
        description="audio: the bytes as they are made; sse: speech.audio.delta events, then speech.audio.done.",
    )
    timestamps: StrictBool = Field(
        False,
        description="The farm's own: time every word. With sse, a speech.timestamps event follows the audio "
        "once aligned; either way GET /v1/jobs/{id}/timestamps has them (the job id is in X-Voicefarm-Job).",
    )


class OpenAIProblem(BaseModel):
    error: dict[str, Any]


async def finished_audio(s: Session, job_id: str, timeout: float) -> str:
    """The object key of the job's audio once it succeeds; 502 if it fails; 504, naming the job,
    if it is still running after `timeout` seconds. Each poll is one query on a thread."""
    deadline = time.monotonic() + timeout
    while True:
        state = await run_in_threadpool(job_state, s, job_id)
        if state.status not in ACTIVE:
            break
        if time.monotonic() >= deadline:
            raise still_running(job_id, state.status, timeout)
        await asyncio.sleep(POLL_SECONDS)
    if state.status != JobStatus.succeeded.value or not state.object_key:
        raise HTTPException(502, {"message": f"job {job_id} failed: {state.error}", "job_id": job_id})
    return str(state.object_key)


def still_running(job_id: str, status: str, timeout: float) -> HTTPException:
    return HTTPException(
        504,
        {
            "message": f"job {job_id} is still {status} after {timeout:g} s; poll GET /v1/jobs/{job_id}",
            "job_id": job_id,
        },
    )


@router.post(
    "/audio/speech",
    responses={
        200: {"content": {"audio/mpeg": {}, "text/event-stream": {}}},
        **{code: {"model": OpenAIProblem} for code in (400, 401, 409, 422, 502, 504)},
        **{code: {"model": OpenAIProblem, "headers": RETRY_AFTER} for code in (429, 503)},
    },
)
async def create_speech(body: SpeechRequest, s: DB, caller: Caller) -> StreamingResponse:
    """Synthesize `input` and stream the audio (OpenAI's `audio.speech.create`)."""
    settings = get_settings()
    result, rate = await submit.accept_speech(
        s,
        caller.tenant_id,
        model=body.model,
        text=body.input,
        voice=body.voice if isinstance(body.voice, str) else body.voice.id,
        format=body.response_format,
        speed=body.speed,
        timestamps=body.timestamps,
    )
    fmt = body.response_format
    wait = None  # for stored audio, however long its store takes: the limit is on synthesis
    if isinstance(result, CachedAudio):
        chunks = stored_chunks(s, result.object_key, fmt, fmt, rate)
    elif fmt in STREAM_FORMATS:
        chunks = live_chunks(s, result.id, fmt, fmt, rate)
        wait = settings.openai_wait_seconds
    else:
        object_key = await finished_audio(s, result.id, settings.openai_wait_seconds)
        chunks = stored_chunks(s, object_key, fmt, fmt, rate)
    try:
        body_chunks = await started(chunks, wait)
    except TimeoutError:
        assert not isinstance(result, CachedAudio)
        status = (await run_in_threadpool(job_state, s, result.id)).status
        raise still_running(result.id, status, settings.openai_wait_seconds) from None
    except JobFailed as e:
        assert not isinstance(result, CachedAudio)
        raise HTTPException(502, {"message": e.message, "job_id": result.id}) from None
    headers = {} if isinstance(result, CachedAudio) else {"X-Voicefarm-Job": result.id}
    if body.stream_format == "sse":
        words = None
        if body.timestamps and not isinstance(result, CachedAudio):
            words = aligned_words(s, result.id, settings.openai_wait_seconds)
        return StreamingResponse(sse(body_chunks, words), media_type="text/event-stream", headers=headers)
    return StreamingResponse(body_chunks, media_type=content_type(fmt), headers=headers)


async def aligned_words(s: Session, job_id: str, timeout: float) -> dict[str, Any]:
    """The job's word timestamps once its audio is aligned, for the speech.timestamps event;
    NotReady, naming where to find them later, after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            row = await run_in_threadpool(alignment_of, s, job_id)
            return {"words": row.words, "source": row.source}
        except NotReady:
            if time.monotonic() >= deadline:
                raise NotReady(
                    f"job {job_id}: its timestamps are not ready after {timeout:g} s; "
                    f"GET /v1/jobs/{job_id}/timestamps has them once aligned"
                ) from None
        await asyncio.sleep(POLL_SECONDS)


def alignment_of(s: Session, job_id: str) -> Alignment:
    s.expire_all()  # each poll reads the job and its alignment afresh
    job = s.get(Job, job_id)
    assert job is not None
    return timestamps.of_job(s, job)
