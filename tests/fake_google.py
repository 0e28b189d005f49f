"""A local stand-in for Google Cloud Text-to-Speech (REST) on 127.0.0.1.

The real `google-cloud-texttospeech` client talks to it over http://127.0.0.1, so tests exercise
the client's own request encoding, auth headers, timeouts and error mapping; no Google host is
ever used. `mode` picks the answer to `POST /v1/text:synthesize` (`modes`, when not empty, is
consumed first, one per call):

    ok      a WAV (LINEAR16) tone at the requested rate, 10 ms per character of text
    400     INVALID_ARGUMENT
    503     UNAVAILABLE
    hang    accept the request and never answer

Calls must carry a bearer JWT signed by the service account's key (`service_account_file`
writes one for the fake and makes it trust that key); anything else gets 401. The client signs
its own JWTs for service accounts (self-signed JWT access), so no OAuth2 token endpoint is ever
called: the key file's token_uri points here all the same, so nothing could reach Google.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

SECONDS_PER_CHAR = 0.07  # about 14 characters a second, as people speak: the quality gate checks


def tone(text: str, sample_rate: int) -> bytes:
    """A WAV file of 16-bit mono 440 Hz, 10 ms per character: its length tells the text apart."""
    n = int(len(text) * SECONDS_PER_CHAR * sample_rate)
    pcm = (0.5 * 32767 * np.sin(2 * np.pi * 440 * np.arange(n) / sample_rate)).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return out.getvalue()


class FakeTextToSpeech:
    def __init__(self) -> None:
        self.mode = "ok"
        self.modes: list[str] = []
        self.public_key_pem: bytes | None = None
        self.requests: list[dict[str, Any]] = []  # synthesize calls: {"body", "headers" (lower-case names)}
        self._release = threading.Event()  # lets hanging handlers go when the server stops
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeTextToSpeech:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def _authorized(self, header: str) -> bool:
        """Whether the Authorization header carries a JWT signed by the service account's key."""
        if self.public_key_pem is None or not header.startswith("Bearer "):
            return False
        try:
            jwt.decode(header.removeprefix("Bearer "), certs=self.public_key_pem)
        except ValueError:
            return False
        return True

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, code: int, status: str, message: str) -> None:
                self._reply(code, {"error": {"code": code, "status": status, "message": message}})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                url = urlparse(self.path)
                if url.path == "/v1/text:synthesize":
                    self._synthesize(json.loads(raw))
                else:
                    self._error(404, "NOT_FOUND", f"no {url.path}")

            def _synthesize(self, body: dict[str, Any]) -> None:
                fake.requests.append({"body": body, "headers": {k.lower(): v for k, v in self.headers.items()}})
                mode = fake.modes.pop(0) if fake.modes else fake.mode
                if not fake._authorized(self.headers.get("Authorization", "")):
                    self._error(401, "UNAUTHENTICATED", "missing or invalid credentials")
                elif mode == "400":
                    self._error(400, "INVALID_ARGUMENT", "Voice 'xx-XX-Nope' does not exist.")
                elif mode == "503":
                    self._error(503, "UNAVAILABLE", "The service is currently unavailable.")
                elif mode == "hang":
                    fake._release.wait()
                else:
                    rate = body["audioConfig"].get("sampleRateHertz") or 24000  # absent: the voice's own
                    audio = tone(body["input"]["text"], rate)
                    self._reply(200, {"audioContent": base64.b64encode(audio).decode()})

        return Handler


def service_account_file(fake: FakeTextToSpeech, path: Path) -> Path:
    """Write a service-account key file for `fake`, with a fresh RSA key the fake will trust."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fake.public_key_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    info = {
        "type": "service_account",
        "project_id": "voicefarm-test",
        "private_key_id": "test-key",
        "private_key": private_pem.decode(),
        "client_email": "tts@voicefarm-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": f"{fake.url}/token",
        # Outside the googleapis.com universe google-auth does not look up the account's regional
        # access boundary, a background call to iamcredentials.googleapis.com on first use.
        "universe_domain": "voicefarm.test",
    }
    path.write_text(json.dumps(info))
    return path
