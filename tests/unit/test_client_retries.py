"""The SDK's retries against a scripted stand-in server, and webhook signatures: no farm needed."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from voicefarm.client import AsyncClient, Client, Invalid, JobFailed, NotReady, Unavailable, verify_signature
from voicefarm.ops.supervisor import free_port
from voicefarm.schemas import JobOut
from voicefarm.signing import signature


class Scripted(ThreadingHTTPServer):
    """A stand-in farm: answers each request with the next (status, headers, body) of its script,
    and records what it was sent."""

    def __init__(self, script: list[tuple[int, dict[str, str], bytes | dict]]) -> None:
        self.script = list(script)
        self.requests: list[tuple[str, str, Message]] = []
        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_port}"

    def __enter__(self) -> Scripted:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    server: Scripted

    def answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append((self.command, self.path, self.headers))
        status, headers, body = self.server.script.pop(0)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Length": str(len(data)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = answer

    def log_message(self, *_: object) -> None:
        pass


QUEUED = {"id": "j1", "status": "queued", "format": "wav", "content_key": "k"}
BUSY = (503, {}, {"error": "broker unavailable, job not accepted"})


def test_submit_retries_transient_errors_with_one_idempotency_key() -> None:
    with (
        Scripted([BUSY, (502, {}, b"<html>bad gateway</html>"), (202, {}, QUEUED)]) as server,
        Client(server.url, "key", backoff=0.01) as client,
    ):
        assert client.submit("Hello.").id == "j1"
    keys = [headers["Idempotency-Key"] for _, _, headers in server.requests]
    assert len(keys) == 3 and keys[0] and len(set(keys)) == 1


def test_async_client_retries_too() -> None:
    async def run() -> str | None:
        async with AsyncClient(server.url, "key", backoff=0.01) as client:
            return (await client.submit("Hello.", idempotency_key="mine")).id

    with Scripted([(429, {"Retry-After": "0"}, {"error": "slow down"}), (202, {}, QUEUED)]) as server:
        assert asyncio.run(run()) == "j1"
    assert [headers["Idempotency-Key"] for _, _, headers in server.requests] == ["mine", "mine"]


def test_what_is_not_retried_and_giving_up() -> None:
    refused = (422, {}, {"error": "text is empty"})
    busy_then_bad = [refused, BUSY, BUSY, BUSY, BUSY, (502, {}, {"error": "bad gateway"})]
    with Scripted(busy_then_bad) as server, Client(server.url, "key", retries=3, backoff=0.01) as client:
        with pytest.raises(Invalid, match="text is empty"):  # a 4xx is final
            client.submit(" ")
        assert len(server.requests) == 1
        with pytest.raises(Unavailable, match="503: broker unavailable"):  # 1 try + 3 retries
            client.submit("Hello.")
        assert len(server.requests) == 5
        # An upload is not idempotent: after a 502 it may have happened, so it is not repeated.
        with pytest.raises(Unavailable, match="502: bad gateway"):
            client.upload_voice("Narrator", "en", b"RIFF", consent=True)
        assert len(server.requests) == 6
    with (
        Client(f"http://127.0.0.1:{free_port()}", "key", backoff=0.01) as client,
        pytest.raises(Unavailable, match="ConnectError"),
    ):  # nobody listening, even after retries
        client.get("j1")


def test_download_follows_a_redirect_without_the_api_key() -> None:
    with Scripted([(200, {}, b"audio bytes")]) as store:
        moved = (307, {"Location": f"{store.url}/audio/k.wav?X-Amz-Signature=s"}, b"")
        with Scripted([moved]) as api, Client(api.url, "secret-key") as client:
            job = JobOut.model_validate({**QUEUED, "status": "succeeded", "audio_url": f"{api.url}/v1/jobs/j1/audio"})
            assert client.download(job) == b"audio bytes"
    assert api.requests[0][2]["X-API-Key"] == "secret-key"
    assert store.requests[0][1] == "/audio/k.wav?X-Amz-Signature=s" and "X-API-Key" not in store.requests[0][2]


def test_verify_signature() -> None:
    body, secret, now = b'{"event": "job.finished", "job": {"id": "j1"}}', "tenant-secret", int(time.time())
    mac = hmac.new(secret.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    header = f"t={now},v1={mac}"
    assert signature(secret, body, now) == header
    assert verify_signature(secret, body, header)
    assert verify_signature(secret, body, f"t={now},v1={'0' * 64},v1={mac}")  # secrets being rotated
    assert not verify_signature(secret, body + b" ", header)  # tampered body
    assert not verify_signature("another-secret", body, header)
    assert not verify_signature(secret, body, signature(secret, body, now - 301))  # too old: a replay
    assert verify_signature(secret, body, signature(secret, body, now - 3600), tolerance=7200)
    for garbage in ("", "v1=" + mac, f"t=soon,v1={mac}", "t", f"t={now}"):
        assert not verify_signature(secret, body, garbage), garbage


def test_waiting_on_a_cache_hit_returns_it_without_a_call() -> None:
    """A cache hit has no job behind it (id None): it is already final, so nothing is polled."""
    hit = JobOut.model_validate({**QUEUED, "id": None, "status": "succeeded", "cache": "hit"})
    with Scripted([]) as server, Client(server.url, "key") as client:
        assert client.wait(hit) == hit
    assert server.requests == []


def test_a_failed_jobs_stream_raises_job_failed_with_its_final_state() -> None:
    """A stream's 409 is a failed job, or one whose audio cannot stream yet: the job says which."""
    failed = {**QUEUED, "status": "failed", "error": "every engine failed: piper: boom"}
    refused = (409, {}, {"error": "job j1 failed: every engine failed: piper: boom"})
    not_yet = (409, {}, {"error": "job j1 is queued: its format 'flac' cannot be streamed as it is made"})
    script = [refused, (200, {}, failed), not_yet, (200, {}, QUEUED)]
    job = JobOut.model_validate(QUEUED)

    async def stream() -> bytes:
        async with AsyncClient(server.url, "key") as client:
            return await anext(client.stream_job(job))

    with Scripted(script) as server, Client(server.url, "key") as client:
        with pytest.raises(JobFailed, match="job j1 failed: every engine failed: piper: boom") as e:
            next(client.stream_job(job))
        assert e.value.job.status == "failed"
        with pytest.raises(NotReady, match="cannot be streamed"):
            next(client.stream_job(job))
    with Scripted(script) as server, pytest.raises(JobFailed) as e:
        asyncio.run(stream())
    assert e.value.job.status == "failed"
