"""The farm's SDK for agent services: sync and async clients, typed results, retries, webhook checks.

Each operation is written once, as a flow: a generator that yields the HTTP calls it makes (and
the pauses it takes) and returns a typed result. `Client` and `AsyncClient` only carry flows
out, with blocking or async I/O, so the two cannot drift apart.

Completion: `wait` polls with backoff. A service that would rather be called back submits with
`callback_url=...` and checks each callback with `verify_signature`. A service that would rather
hear the audio while it is made iterates `stream(...)`: a long response, so not a flow.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import httpx
from pydantic import TypeAdapter

from voicefarm.errors import (
    Forbidden,
    InvalidRequest,
    JobCanceled,
    JobFailed,
    NotFound,
    NotReady,
    SampleTooLarge,
    StreamBroken,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    UnreadableSample,
    VoicefarmError,
)
from voicefarm.schemas import BatchItem, BatchOut, ClonedVoiceOut, JobOut, TimestampsOut, VoiceOut
from voicefarm.signing import verify_signature

FINAL = ("succeeded", "failed", "canceled")
POLL_FIRST, POLL_MAX = 0.05, 1.0
MAX_RETRY_DELAY = 30.0
T = TypeVar("T")


__all__ = [
    "AsyncClient",
    "Client",
    "FarmError",
    "Invalid",
    "JobCanceled",
    "JobFailed",
    "NotFound",
    "NotReady",
    "StreamBroken",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "verify_signature",
]

# The SDK raises the farm's own error tree (voicefarm.errors), `status` set to the HTTP status.
FarmError = VoicefarmError
Invalid = InvalidRequest


ERRORS: dict[int, type[VoicefarmError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: NotReady,
    413: SampleTooLarge,
    415: UnreadableSample,
    422: InvalidRequest,
    429: TooManyRequests,
}


def error_from(response: httpx.Response) -> FarmError:
    try:
        message = response.json()["error"]
    except Exception:  # not the API's JSON: a proxy's page, the object store's XML
        message = response.text
    status = response.status_code
    return ERRORS.get(status, Unavailable if status >= 500 else VoicefarmError)(message, status)


M = TypeVar("M", JobOut, BatchOut)


@dataclass(frozen=True)
class Call:
    """One HTTP request a flow makes."""

    method: str
    url: str
    json: Any = None
    data: dict[str, str] | None = None
    files: dict[str, tuple[str, bytes]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: bool = True  # False off the farm (a presigned object-store URL): the API key stays home
    idempotent: bool = True  # repeating it is harmless, so it is also retried when its outcome is unknown


# Yields a Call (answered with its httpx.Response, or the httpx.TransportError it raised) or a
# pause in seconds (answered with None); returns the result.
Flow = Generator["Call | float", Any, T]

# No request reached the farm, or it refused before doing anything: always safe to repeat.
UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# The request may have been carried out: repeated only when that is harmless.
MAYBE_SENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def retry_delay(
    call: Call, outcome: httpx.Response | httpx.TransportError, attempt: int, retries: int, backoff: float
) -> float | None:
    """Seconds to wait before trying again, or None to give up: exponential with jitter (so
    clients that failed together do not retry together), no shorter than the farm's Retry-After."""
    if attempt >= retries:
        return None
    if isinstance(outcome, httpx.Response):
        status = outcome.status_code
        if not (status in (429, 503) or (call.idempotent and status in (502, 504))):
            return None
    elif not (isinstance(outcome, UNSENT) or (call.idempotent and isinstance(outcome, MAYBE_SENT))):
        return None
    delay = backoff * 2.0**attempt * random.uniform(0.5, 1.0)
    after = str(outcome.headers.get("retry-after", "")) if isinstance(outcome, httpx.Response) else ""
    return min(max(delay, float(after)) if after.isdigit() else delay, MAX_RETRY_DELAY)


def send(call: Call, retries: int, backoff: float) -> Flow[httpx.Response]:
    """The call's successful (or redirecting) response, retried on transient failures; a
    FarmError carrying the API's message otherwise."""
    for attempt in itertools.count():
        outcome = yield call
        if isinstance(outcome, httpx.Response) and not outcome.is_error:
            return outcome
        delay = retry_delay(call, outcome, attempt, retries, backoff)
        if delay is None:
            if isinstance(outcome, httpx.Response):
                raise error_from(outcome)
            raise Unavailable(f"{call.method} {call.url}: {outcome!r}") from outcome
        yield delay
    raise AssertionError("unreachable: itertools.count() never ends")


def poll(
    current: M,
    fetch: Callable[[], Flow[M]],
    done: Callable[[M], bool],
    timeout: float,
    name: str,
    progress: Callable[[M], None] | None = None,
) -> Flow[M]:
    """Fetch until `done`, pausing 50 ms at first and up to 1 s, showing `progress` each state
    fetched; TimeoutError naming it after `timeout`."""
    deadline, delay = time.monotonic() + timeout, POLL_FIRST
    if progress is not None:
        progress(current)
    while not done(current):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{name} is still {current.status} after {timeout:g} s")
        yield min(delay, left)
        delay = min(delay * 1.5, POLL_MAX)
        current = yield from fetch()
        if progress is not None:
            progress(current)
    return current


def ended(job: JobOut) -> JobFailed | None:
    """Why a final job has no audio: JobCanceled or JobFailed, with its state; None if it has."""
    if job.status == "canceled":
        return JobCanceled(f"job {job.id} was canceled", job)
    if job.status == "failed":
        return JobFailed(f"job {job.id} failed: {job.error}", job)
    return None


def _options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if v is not None}


class Flows:
    """Every operation, as a flow; the clients run them."""

    def __init__(self, retries: int, backoff: float) -> None:
        self.retries, self.backoff = retries, backoff

    def call(self, call: Call) -> Flow[httpx.Response]:
        return send(call, self.retries, self.backoff)

    def submit(self, text: str, idempotency_key: str | None, options: dict[str, Any]) -> Flow[JobOut]:
        # One key for every attempt: a retry gets the first job back instead of making a second.
        headers = {"Idempotency-Key": idempotency_key or uuid.uuid4().hex}
        response = yield from self.call(
            Call("POST", "/v1/jobs", json={"text": text, **_options(options)}, headers=headers)
        )
        return JobOut.model_validate(response.json())

    def get(self, job_id: str) -> Flow[JobOut]:
        return JobOut.model_validate((yield from self.call(Call("GET", f"/v1/jobs/{job_id}"))).json())

    def wait(self, job: JobOut | str, timeout: float, progress: Callable[[JobOut], None] | None) -> Flow[JobOut]:
        if isinstance(job, str):
            job = yield from self.get(job)
        job_id = job.id
        if job_id is None:  # a cache hit: finished, with no job behind it
            return job
        return (
            yield from poll(
                job, lambda: self.get(job_id), lambda j: j.status in FINAL, timeout, f"job {job_id}", progress
            )
        )

    def cancel(self, job_id: str) -> Flow[JobOut]:
        return JobOut.model_validate((yield from self.call(Call("POST", f"/v1/jobs/{job_id}/cancel"))).json())

    def cancel_batch(self, batch_id: str) -> Flow[BatchOut]:
        return BatchOut.model_validate((yield from self.call(Call("POST", f"/v1/batches/{batch_id}/cancel"))).json())

    def stream_refused(self, job: JobOut, response: httpx.Response) -> Flow[FarmError]:
        """Why GET /v1/jobs/{id}/stream refused. Its 409 is a job that failed, or one whose audio
        cannot stream yet: the job, asked again, says which; a failed one is JobFailed, with its
        final state."""
        error = error_from(response)
        if response.status_code != 409 or job.id is None:
            return error
        final = yield from self.get(job.id)
        return ended(final) or error

    def download(self, source: JobOut | BatchItem) -> Flow[bytes]:
        if isinstance(source, JobOut) and (error := ended(source)) is not None:
            raise error
        if source.audio_url is None:
            what = (
                f"job {source.id} is {source.status}"
                if isinstance(source, JobOut)
                else f"batch item {source.index} (job {source.job_id})"
            )
            raise NotReady(f"{what}: its audio is not ready")
        response = yield from self.call(Call("GET", source.audio_url))
        if response.is_redirect:
            location = str(response.url.join(response.headers["location"]))
            response = yield from self.call(Call("GET", location, auth=False))
        return response.content

    def synthesize(self, text: str, timeout: float, options: dict[str, Any]) -> Flow[bytes]:
        job = yield from self.submit(text, None, options)
        job = yield from self.wait(job, timeout, None)
        return (yield from self.download(job))

    def upload_voice(
        self, name: str, language: str, sample: bytes | Path | BinaryIO, consent: bool, options: dict[str, Any]
    ) -> Flow[ClonedVoiceOut]:
        if isinstance(sample, Path):
            filename, data = sample.name, sample.read_bytes()
        elif isinstance(sample, bytes):
            filename, data = "sample", sample
        else:
            filename, data = Path(getattr(sample, "name", "sample")).name, sample.read()
        form = {"name": name, "language": language, "consent": str(consent).lower(), **_options(options)}
        # Not idempotent: a repeat after an unknown outcome could clone the voice twice.
        response = yield from self.call(
            Call("POST", "/v1/voices", data=form, files={"file": (filename, data)}, idempotent=False)
        )
        return ClonedVoiceOut.model_validate(response.json())

    def voices(self) -> Flow[list[VoiceOut | ClonedVoiceOut]]:
        return VOICES.validate_python((yield from self.call(Call("GET", "/v1/voices"))).json())

    def delete_voice(self, voice_id: str) -> Flow[None]:
        yield from self.call(Call("DELETE", f"/v1/voices/{voice_id}"))

    def create_batch(self, items: list[dict[str, Any]] | None, options: dict[str, Any]) -> Flow[BatchOut]:
        body = _options({"items": items, **options})
        response = yield from self.call(Call("POST", "/v1/batches", json=body, idempotent=False))
        return BatchOut.model_validate(response.json())

    def get_batch(self, batch_id: str) -> Flow[BatchOut]:
        return BatchOut.model_validate((yield from self.call(Call("GET", f"/v1/batches/{batch_id}"))).json())

    def timestamps(self, job: JobOut | str, timeout: float) -> Flow[TimestampsOut]:
        job = yield from self.wait(job, timeout, None)
        if job.id is None:
            raise InvalidRequest("a cache hit made no job: submit with timestamps=True for its timestamps")
        if (error := ended(job)) is not None:
            raise error
        # Succeeded: a 409 now means its audio is still being aligned.
        call, deadline, delay = Call("GET", f"/v1/jobs/{job.id}/timestamps"), time.monotonic() + timeout, POLL_FIRST
        while True:
            try:
                return TimestampsOut.model_validate((yield from self.call(call)).json())
            except NotReady as e:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"job {job.id}: no timestamps after {timeout:g} s ({e.message})") from None
                yield min(delay, left)
                delay = min(delay * 1.5, POLL_MAX)

    def captions(self, job: JobOut | str, fmt: str, timeout: float) -> Flow[str]:
        job = yield from self.wait(job, timeout, None)
        yield from self.timestamps(job, timeout)  # aligned: its captions are there too
        return (yield from self.call(Call("GET", f"/v1/jobs/{job.id}/captions.{fmt}"))).text

    def wait_batch(self, batch: BatchOut | str, timeout: float) -> Flow[BatchOut]:
        if isinstance(batch, str):
            batch = yield from self.get_batch(batch)
        batch_id = batch.id
        return (
            yield from poll(
                batch, lambda: self.get_batch(batch_id), lambda b: b.status == "done", timeout, f"batch {batch_id}"
            )
        )


# Cloned voices first: a built-in voice lacks their fields, a cloned one would pass as built-in.
VOICES = TypeAdapter(list[ClonedVoiceOut | VoiceOut])


def _request(http: httpx.Client | httpx.AsyncClient, call: Call, api_key: str) -> httpx.Request:
    headers = {**call.headers, **({"X-API-Key": api_key} if call.auth else {})}
    return http.build_request(call.method, call.url, json=call.json, data=call.data, files=call.files, headers=headers)


def cut_off(job: JobOut, e: httpx.TransportError) -> StreamBroken:
    assert job.id is not None
    return StreamBroken(f"the stream of job {job.id} was cut off ({e}); poll the job for its audio", job.id)


class Client:
    """Blocking client. Retries transient failures `retries` times, backing off from `backoff` s."""

    def __init__(
        self, base_url: str, api_key: str, *, timeout: float = 30.0, retries: int = 3, backoff: float = 0.25
    ) -> None:
        # Redirects are followed by hand (download), without the key.
        self.http = httpx.Client(base_url=base_url, timeout=timeout)
        self.api_key = api_key
        self.flows = Flows(retries, backoff)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _run(self, flow: Flow[T]) -> T:
        reply: Any = None
        while True:
            try:
                step = flow.send(reply)
            except StopIteration as done:
                result: T = done.value
                return result
            if isinstance(step, Call):
                try:
                    reply = self.http.send(_request(self.http, step, self.api_key))
                except httpx.TransportError as e:
                    reply = e
            else:
                time.sleep(step)
                reply = None

    def submit(self, text: str, *, idempotency_key: str | None = None, **options: Any) -> JobOut:
        """Queue a job, or get the cached audio's record at once (`cache == "hit"`, no id). Options
        are POST /v1/jobs fields: voice, language, quality, format, speed, sample_rate, callback_url,
        timestamps (then even a hit is a job, whose timestamps and captions can be fetched)."""
        return self._run(self.flows.submit(text, idempotency_key, options))

    def get(self, job_id: str) -> JobOut:
        return self._run(self.flows.get(job_id))

    def cancel(self, job_id: str) -> JobOut:
        """Cancel a job: it stops at its next piece of audio, or never runs. Returns the job as
        it stands then (one that ended first keeps its own outcome)."""
        return self._run(self.flows.cancel(job_id))

    def wait(
        self, job: JobOut | str, *, timeout: float = 300.0, progress: Callable[[JobOut], None] | None = None
    ) -> JobOut:
        """The job once it has succeeded or failed, polling with backoff; TimeoutError after `timeout` s.
        `progress` sees each state fetched: a long text's `segments` tell how far it is."""
        return self._run(self.flows.wait(job, timeout, progress))

    def download(self, source: JobOut | BatchItem) -> bytes:
        """A succeeded job's (or batch item's) audio; JobFailed (JobCanceled) or NotReady otherwise."""
        return self._run(self.flows.download(source))

    def synthesize(self, text: str, *, timeout: float = 300.0, **options: Any) -> bytes:
        """Submit, wait, and return the audio bytes."""
        return self._run(self.flows.synthesize(text, timeout, options))

    def stream(self, text: str, *, timeout: float = 300.0, **options: Any) -> Iterator[bytes]:
        """Submit, and yield the audio (pcm, wav, mp3, opus or aac) as the farm makes it; a cache
        hit comes whole, at once. Waits up to `timeout` s for each chunk. StreamBroken when the
        stream is cut off (the engine failed after its audio began; the job goes on)."""
        return self.stream_job(self.submit(text, **options), timeout=timeout)

    def stream_job(self, job: JobOut, *, timeout: float = 300.0) -> Iterator[bytes]:
        """The audio of a submitted job, in its format, as `stream` yields it: for a caller that
        also wants the job (its timestamps, its attempts)."""
        if job.id is None:
            yield self.download(job)
            return
        headers = {"X-API-Key": self.api_key}
        with self.http.stream("GET", f"/v1/jobs/{job.id}/stream", headers=headers, timeout=timeout) as response:
            if response.is_error:
                response.read()
                raise self._run(self.flows.stream_refused(job, response))
            try:
                yield from response.iter_bytes()
            except httpx.TransportError as e:
                raise cut_off(job, e) from e

    def upload_voice(
        self,
        name: str,
        language: str,
        sample: bytes | Path | BinaryIO,
        *,
        consent: bool,
        description: str | None = None,
        fallback_voice: str | None = None,
    ) -> ClonedVoiceOut:
        """Clone a voice from 3–30 s of one speaker; `consent` attests the speaker agreed."""
        return self._run(
            self.flows.upload_voice(
                name, language, sample, consent, {"description": description, "fallback_voice": fallback_voice}
            )
        )

    def voices(self) -> list[VoiceOut | ClonedVoiceOut]:
        return self._run(self.flows.voices())

    def delete_voice(self, voice_id: str) -> None:
        """Delete a cloned voice and everything made with it."""
        return self._run(self.flows.delete_voice(voice_id))

    def timestamps(self, job: JobOut | str, *, timeout: float = 300.0) -> TimestampsOut:
        """When each word of a job submitted with timestamps=True is heard: waits for the job
        and its alignment; NotFound when it did not ask for them, JobFailed when it failed."""
        return self._run(self.flows.timestamps(job, timeout))

    def captions(self, job: JobOut | str, format: str = "vtt", *, timeout: float = 300.0) -> str:
        """The job's captions, `vtt` (WebVTT) or `srt` (SubRip); waits as `timestamps` does."""
        return self._run(self.flows.captions(job, format, timeout))

    def create_batch(self, items: list[dict[str, Any]] | None = None, **options: Any) -> BatchOut:
        """Queue many jobs: `items` (each a POST /v1/jobs body), or `phrases=[...]` times
        `voices=[...]`; options: quality, format, speed, language, sample_rate, callback_url."""
        return self._run(self.flows.create_batch(items, options))

    def get_batch(self, batch_id: str) -> BatchOut:
        return self._run(self.flows.get_batch(batch_id))

    def cancel_batch(self, batch_id: str) -> BatchOut:
        """Cancel every job of a batch that has not ended; returns the batch as it stands then."""
        return self._run(self.flows.cancel_batch(batch_id))

    def wait_batch(self, batch: BatchOut | str, *, timeout: float = 600.0) -> BatchOut:
        """The batch once every item is final, its manifest complete."""
        return self._run(self.flows.wait_batch(batch, timeout))


class AsyncClient:
    """`Client`'s operations for asyncio: the same flows, awaited."""

    def __init__(
        self, base_url: str, api_key: str, *, timeout: float = 30.0, retries: int = 3, backoff: float = 0.25
    ) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self.api_key = api_key
        self.flows = Flows(retries, backoff)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _run(self, flow: Flow[T]) -> T:
        reply: Any = None
        while True:
            try:
                step = flow.send(reply)
            except StopIteration as done:
                result: T = done.value
                return result
            if isinstance(step, Call):
                try:
                    reply = await self.http.send(_request(self.http, step, self.api_key))
                except httpx.TransportError as e:
                    reply = e
            else:
                await asyncio.sleep(step)
                reply = None

    async def submit(self, text: str, *, idempotency_key: str | None = None, **options: Any) -> JobOut:
        return await self._run(self.flows.submit(text, idempotency_key, options))

    async def get(self, job_id: str) -> JobOut:
        return await self._run(self.flows.get(job_id))

    async def cancel(self, job_id: str) -> JobOut:
        return await self._run(self.flows.cancel(job_id))

    async def wait(
        self, job: JobOut | str, *, timeout: float = 300.0, progress: Callable[[JobOut], None] | None = None
    ) -> JobOut:
        return await self._run(self.flows.wait(job, timeout, progress))

    async def download(self, source: JobOut | BatchItem) -> bytes:
        return await self._run(self.flows.download(source))

    async def synthesize(self, text: str, *, timeout: float = 300.0, **options: Any) -> bytes:
        return await self._run(self.flows.synthesize(text, timeout, options))

    async def stream(self, text: str, *, timeout: float = 300.0, **options: Any) -> AsyncIterator[bytes]:
        async for chunk in self.stream_job(await self.submit(text, **options), timeout=timeout):
            yield chunk

    async def stream_job(self, job: JobOut, *, timeout: float = 300.0) -> AsyncIterator[bytes]:
        if job.id is None:
            yield await self.download(job)
            return
        headers = {"X-API-Key": self.api_key}
        async with self.http.stream("GET", f"/v1/jobs/{job.id}/stream", headers=headers, timeout=timeout) as response:
            if response.is_error:
                await response.aread()
                raise await self._run(self.flows.stream_refused(job, response))
            try:
                async for chunk in response.aiter_bytes():
                    yield chunk
            except httpx.TransportError as e:
                raise cut_off(job, e) from e

    async def upload_voice(
        self,
        name: str,
        language: str,
        sample: bytes | Path | BinaryIO,
        *,
        consent: bool,
        description: str | None = None,
        fallback_voice: str | None = None,
    ) -> ClonedVoiceOut:
        return await self._run(
            self.flows.upload_voice(
                name, language, sample, consent, {"description": description, "fallback_voice": fallback_voice}
            )
        )

    async def voices(self) -> list[VoiceOut | ClonedVoiceOut]:
        return await self._run(self.flows.voices())

    async def delete_voice(self, voice_id: str) -> None:
        return await self._run(self.flows.delete_voice(voice_id))

    async def timestamps(self, job: JobOut | str, *, timeout: float = 300.0) -> TimestampsOut:
        return await self._run(self.flows.timestamps(job, timeout))

    async def captions(self, job: JobOut | str, format: str = "vtt", *, timeout: float = 300.0) -> str:
        return await self._run(self.flows.captions(job, format, timeout))

    async def create_batch(self, items: list[dict[str, Any]] | None = None, **options: Any) -> BatchOut:
        return await self._run(self.flows.create_batch(items, options))

    async def get_batch(self, batch_id: str) -> BatchOut:
        return await self._run(self.flows.get_batch(batch_id))

    async def cancel_batch(self, batch_id: str) -> BatchOut:
        return await self._run(self.flows.cancel_batch(batch_id))

    async def wait_batch(self, batch: BatchOut | str, *, timeout: float = 600.0) -> BatchOut:
        return await self._run(self.flows.wait_batch(batch, timeout))
