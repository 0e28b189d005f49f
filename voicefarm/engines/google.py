"""Google Cloud Text-to-Speech, through the `google-cloud-texttospeech` client.

A paid remote engine: available only where credentials are configured (a service-account file,
or application default credentials), so chains skip it elsewhere. Every call carries a timeout,
since the client sets none and its REST transport would wait forever on a silent server, and
transient server errors are retried a bounded number of times; anything else fails at once so
the job moves on to the next engine in its chain.

Built-in voices are `google:<Google voice name>`. Asked for any other voice (standing in for
another engine's voice), the engine speaks the voice that `voices` maps to the request's language.
"""

from __future__ import annotations

import io
import logging
import os
import random
import time
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from voicefarm.engines.base import Audio, Capabilities, SynthesisRequest, Voice, joined
from voicefarm.engines.text import crossfaded, split_text
from voicefarm.settings import Settings

log = logging.getLogger(__name__)

VOICE_PREFIX = "google:"
# Language (primary subtag, or a full tag that overrides it) -> Google voice name.
DEFAULT_VOICES: dict[str, str] = {
    "en": "en-US-Standard-C",
    "en-GB": "en-GB-Standard-A",
    "de": "de-DE-Standard-A",
    "es": "es-ES-Standard-A",
    "fr": "fr-FR-Standard-A",
    "it": "it-IT-Standard-A",
    "nl": "nl-NL-Standard-A",
    "pt": "pt-BR-Standard-A",
    "ja": "ja-JP-Standard-A",
}
# Google publishes no model versions: its voices may change under the same name.
MODEL_VERSION = "google-tts-v1"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
MAX_INPUT_BYTES = 5000  # the API's limit on one request's text
# Pieces of at most this many characters fit MAX_INPUT_BYTES in any script (UTF-8: <= 4 bytes each).
PIECE_CHARS = MAX_INPUT_BYTES // 4


class GoogleTTSError(RuntimeError):
    """A synthesis call that failed; plain text, so it pickles into a job's error."""


def _voice_language(voice_name: str) -> str:
    """`en-US-Standard-C` -> `en-US`: Google names every voice after its language code."""
    return "-".join(voice_name.split("-")[:2])


def _adc_problem() -> str | None:
    """Why application default credentials cannot be found here, checked without the network."""
    path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if path:
        return None if Path(path).is_file() else f"GOOGLE_APPLICATION_CREDENTIALS names {path}, which does not exist"
    gcloud = Path(os.environ.get("CLOUDSDK_CONFIG") or Path.home() / ".config" / "gcloud")
    if (gcloud / "application_default_credentials.json").is_file():
        return None
    return (
        "no Google credentials: set google_credentials_file or GOOGLE_APPLICATION_CREDENTIALS, "
        "or run `gcloud auth application-default login`"
    )


class GoogleEngine:
    name = "google"

    def __init__(
        self,
        *,
        credentials_file: Path | None = None,
        endpoint: str | None = None,
        voices: Mapping[str, str] = DEFAULT_VOICES,
        timeout: float = 10.0,
        retries: int = 2,
        sample_rate: int = 24000,
        backoff: float = 0.5,
    ) -> None:
        self.credentials_file = credentials_file
        self.endpoint = endpoint  # e.g. http://127.0.0.1:8080; None: Google's own
        self.voices = {tag.replace("_", "-").lower(): name for tag, name in voices.items()}
        self.timeout = timeout
        self.retries = retries
        self.sample_rate = sample_rate
        self.backoff = backoff
        self._client: Any = None

    def _problem(self) -> str | None:
        try:
            metadata.version("google-cloud-texttospeech")
        except metadata.PackageNotFoundError:
            return "google-cloud-texttospeech is not installed"
        if self.credentials_file is None:
            return _adc_problem()
        if not self.credentials_file.is_file():
            return f"google_credentials_file {self.credentials_file} does not exist"
        return None

    def capabilities(self) -> Capabilities:
        voices: dict[str, Voice] = {}
        for tag, name in self.voices.items():
            # The farm's language, not Google's: Mandarin voices are `cmn-CN-...`, mapped from `zh`.
            language = "-".join([tag.split("-")[0], *_voice_language(name).split("-")[1:]])
            voice_id = VOICE_PREFIX + name
            voices.setdefault(voice_id, Voice(voice_id, language, name, self.sample_rate))
        return Capabilities(
            languages=frozenset(tag.split("-")[0] for tag in self.voices),
            voices=tuple(voices.values()),
            model_version=MODEL_VERSION,
            unavailable=self._problem(),
        )

    def load(self) -> None:
        import google.auth
        from google.cloud import texttospeech
        from google.oauth2 import service_account

        if self.credentials_file is not None:
            # A service-account key only: other credential files may run commands or fetch URLs.
            credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                self.credentials_file, scopes=SCOPES
            )
        else:
            credentials, _ = google.auth.default(scopes=SCOPES)
        # REST, not gRPC: one HTTP stack whose timeouts we set, and an endpoint override that
        # keeps its scheme (http:// for a local server).
        options = {"api_endpoint": self.endpoint} if self.endpoint else None
        self._client = texttospeech.TextToSpeechClient(
            credentials=credentials, transport="rest", client_options=options
        )
        log.info("google: client ready (endpoint %s)", self._client.api_endpoint)

    def _voice_name(self, request: SynthesisRequest) -> str:
        """The Google voice that speaks this request."""
        if request.voice.startswith(VOICE_PREFIX):
            return request.voice.removeprefix(VOICE_PREFIX)
        tag = request.language.replace("_", "-").lower()
        name = self.voices.get(tag) or self.voices.get(tag.split("-")[0])
        if name is None:
            raise GoogleTTSError(f"no Google voice configured for language {request.language!r}")
        return name

    def stream(self, request: SynthesisRequest) -> Iterator[Audio]:
        """One request per sentence (or piece of an over-long one), each handed on as it comes."""
        from google.cloud import texttospeech

        if self._client is None:
            raise RuntimeError("google: synthesize() before load()")
        name = self._voice_name(request)
        voice = texttospeech.VoiceSelectionParams(language_code=_voice_language(name), name=name)
        config = texttospeech.AudioConfig(
            audio_encoding=texttospeech.AudioEncoding.LINEAR16,
            sample_rate_hertz=self.sample_rate,
            speaking_rate=request.speed,
            pitch=float(request.options.get("pitch", 0.0)),
        )
        rates: list[int] = []

        def decoded() -> Iterator[np.ndarray]:
            for piece in split_text(request.text, PIECE_CHARS, pack=False):
                response = self._call(input=texttospeech.SynthesisInput(text=piece), voice=voice, audio_config=config)
                # LINEAR16 comes as a WAV file; its header carries the rate actually produced.
                samples, rate = sf.read(io.BytesIO(response.audio_content), dtype="float32", always_2d=True)
                rates.append(rate)
                yield samples.mean(axis=1)

        for samples in crossfaded(decoded(), self.sample_rate):
            yield Audio(samples, rates[-1])

    def synthesize(self, request: SynthesisRequest) -> Audio:
        return joined(self.stream(request))

    def _call(self, **request: Any) -> Any:
        """One synthesize_speech call with our timeout, retried on transient errors only."""
        from google.api_core import exceptions
        from google.auth import exceptions as auth
        from requests import exceptions as http

        transient = (
            exceptions.InternalServerError,
            exceptions.BadGateway,
            exceptions.ServiceUnavailable,
            exceptions.GatewayTimeout,
            http.ConnectionError,
        )
        attempt = 0
        while True:
            attempt += 1
            try:
                # retry=None: this loop is the only retry, so attempts are counted in one place.
                return self._client.synthesize_speech(**request, timeout=self.timeout, retry=None)
            except http.Timeout as e:
                # Not retried: another try would spend the same again before the chain could
                # move on, and the server may still be working on this one.
                raise GoogleTTSError(f"Google TTS did not answer within {self.timeout:g} s: {e}") from e
            except transient as e:
                if attempt > self.retries:
                    raise GoogleTTSError(f"Google TTS failed {attempt} times: {e}") from e
                delay = self.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
                log.warning("google: %s; retrying in %.2f s", e, delay)
                time.sleep(delay)
            except (exceptions.GoogleAPICallError, auth.GoogleAuthError) as e:
                # 4xx and credential failures: the same request would fail the same way.
                raise GoogleTTSError(f"Google TTS call failed (not retried): {e}") from e


def from_settings(settings: Settings) -> GoogleEngine:
    return GoogleEngine(
        credentials_file=settings.google_credentials_file,
        endpoint=settings.google_endpoint,
        voices=settings.google_voices or DEFAULT_VOICES,
        timeout=settings.google_timeout_seconds,
        retries=settings.google_retries,
        sample_rate=settings.google_sample_rate,
    )
