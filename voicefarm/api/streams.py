"""Live audio over HTTP: a job's stream as encoded bytes, for GET /v1/jobs/{id}/stream and the
OpenAI endpoint's `stream_format` ("audio": the bytes, "sse": server-sent events).

A stream answers once its first audio is ready, so a job that fails before any is an ordinary
error (JobFailed: the job stream's 409, OpenAI's 502) rather than a cut stream. After that, a
failure cuts it: a raw stream is closed before its final chunk (clients see a truncated
transfer), an SSE stream ends with an `error` event naming the job.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session

from voicefarm.audio import join
from voicefarm.audio.codec import decode, output_rate
from voicefarm.audio.encoder import StreamEncoder
from voicefarm.engines.base import Audio
from voicefarm.errors import NotFound, NotReady, StreamBroken
from voicefarm.jobs import relay
from voicefarm.jobs.feeds import get_feed
from voicefarm.library.cache import get_cache
from voicefarm.library.renditions import content_key_of, master_key
from voicefarm.store.models import Job, JobStatus, Rendition
from voicefarm.store.objects import get_store

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024  # a stored file goes out in pieces of this size


def job_state(s: Session, job_id: str) -> relay.JobState:
    try:
        query = select(Job.status, Job.canceled_at, Job.leader_id, Job.object_key, Job.error).where(Job.id == job_id)
        row = s.execute(query).one_or_none()
        if row is None:  # deleted meanwhile, with its voice
            raise NotFound(f"no job {job_id!r}")
        status = JobStatus.canceled.value if row.canceled_at else row.status
        return relay.JobState(status, row.leader_id, row.object_key, row.error)
    finally:
        s.rollback()  # back to the pool between polls: a long wait must not hold a connection


def stored(s: Session, object_key: str, stored_format: str, fmt: str, rate: int | None) -> bytes:
    """Stored audio for a stream: its own bytes in its own format, else made from the speech's
    lossless master (no synthesis). A use, which keeps it from expiring."""
    key = content_key_of(object_key)
    store = get_store()
    try:
        get_cache().used(s, [key])
        if fmt == stored_format:
            return store.get(object_key)
        row = s.get(Rendition, key)
        assert row is not None, "stored audio has its rendition"
        source = row.source_key
    finally:
        s.rollback()  # a stream may outlive the request's session: hold no connection meanwhile
    audio = decode(store.get(master_key(source)))
    return StreamEncoder(fmt, audio.sample_rate, output_rate(fmt, audio.sample_rate, rate)).feed(audio.samples, True)


def said(segment: relay.Said) -> Audio:
    """A document's segment, from its stored master, as the document will have it."""
    return join.heard(decode(get_store().get(master_key(segment.source))), segment.pause)


async def stored_chunks(
    s: Session, object_key: str, stored_format: str, fmt: str, rate: int | None
) -> AsyncIterator[bytes]:
    data = await run_in_threadpool(stored, s, object_key, stored_format, fmt, rate)
    for start in range(0, len(data), CHUNK_BYTES):
        yield data[start : start + CHUNK_BYTES]


async def live_chunks(s: Session, job_id: str, job_format: str, fmt: str, rate: int | None) -> AsyncIterator[bytes]:
    """The job's audio in `fmt` (at `rate`, else the engine's), encoded as each piece arrives."""
    encoder: StreamEncoder | None = None
    async for item in relay.follow(get_feed(), job_id, lambda: run_in_threadpool(job_state, s, job_id)):
        if isinstance(item, relay.Stored):
            async for chunk in stored_chunks(s, item.object_key, job_format, fmt, rate):
                yield chunk
            return
        if isinstance(item, relay.Said):
            item = await run_in_threadpool(said, item)
        first = encoder is None
        if encoder is None:
            encoder = StreamEncoder(fmt, item.sample_rate, output_rate(fmt, item.sample_rate, rate))
        data = await run_in_threadpool(encoder.feed, item.samples)
        # The first piece answers even when a codec held all of it back (b""): from then on a
        # failure cuts the stream, as it must once an engine's audio has begun.
        if data or first:
            yield data
    if encoder is not None:
        yield await run_in_threadpool(encoder.close)


async def started(chunks: AsyncIterator[bytes], timeout: float | None = None) -> AsyncIterator[bytes]:
    """The same chunks, once the first has come (TimeoutError after `timeout` s); errors before
    it (JobFailed, ...) are raised here, while the response can still say so."""
    # Not wait_for: a thread or a Redis read may finish after its cancellation, and wait_for
    # would then return their chunk late instead of timing out.
    waiting = asyncio.ensure_future(anext(chunks, b""))
    await asyncio.wait([waiting], timeout=timeout)
    if not waiting.done():
        waiting.cancel()
        raise TimeoutError
    first = waiting.result()

    async def rest() -> AsyncIterator[bytes]:
        yield first
        try:
            async for chunk in chunks:
                yield chunk
        except StreamBroken as e:
            # Raising is the only way to close a response before its final chunk.
            log.warning("stream cut: %s", e.message)
            raise

    return rest()


def event(data: dict[str, object]) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()


async def sse(
    chunks: AsyncIterator[bytes], words: Coroutine[Any, Any, dict[str, Any]] | None = None
) -> AsyncIterator[bytes]:
    """OpenAI's speech events: `speech.audio.delta` (base64 audio) each chunk, then
    `speech.audio.done`; or an `error` event naming the job, when its stream is cut. With
    `words`, the farm's `speech.timestamps` event comes before the done, once they are made."""
    try:
        async for chunk in chunks:
            if chunk:
                yield event({"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode()})
    except StreamBroken as e:
        if words is not None:
            words.close()
        yield event({"type": "error", "error": {"type": "server_error", "message": e.message, "job_id": e.job_id}})
        return
    if words is not None:
        try:
            yield event({"type": "speech.timestamps", **await words})
        except NotReady as e:
            yield event({"type": "error", "error": {"type": "timestamps_not_ready", "message": e.message}})
    yield event({"type": "speech.audio.done"})
