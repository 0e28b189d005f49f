"""The API's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StrictBool, UrlConstraints, model_validator

# No control characters but tab and line breaks: a NUL cannot be stored (PostgreSQL refuses it)
# and the rest are never speech. As a pattern, so the OpenAPI schema carries the rule too.
PRINTABLE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
# What a path, query or header value may hold (api.app.RefuseControlCharacters): no control
# character at all, but a tab in a header.
PLAIN = r"^[^\x00-\x1f\x7f]*$"
HEADER_VALUE = r"^[^\x00-\x08\x0a-\x1f\x7f]*$"
LANGUAGE_TAG = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$"
# Limits are those of the database columns the values are stored in (voicefarm.store.models).
Text = Annotated[str, Field(pattern=PRINTABLE)]
Name = Annotated[str, Field(pattern=PRINTABLE, max_length=200)]  # a voice id
Language = Annotated[str, Field(pattern=LANGUAGE_TAG, max_length=16, description="BCP-47 tag, e.g. en or en-US")]
CallbackUrl = Annotated[HttpUrl, UrlConstraints(max_length=2000)]


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text = Field(description="What to say.")
    voice: Name | None = Field(None, description="A voice id from GET /v1/voices; the farm's default if omitted.")
    language: Language | None = Field(None, description="BCP-47 tag such as en or en-US; the voice's own if omitted.")
    quality: Text | None = Field(None, description="A quality tier; the farm's default if omitted.")
    format: Text = Field(
        "wav",
        description="wav, flac, mp3, ogg (Vorbis), opus (Ogg Opus), aac (ADTS) or pcm (raw 16-bit little-endian mono).",
    )
    speed: float = Field(1.0, description="Speaking rate; 1.0 is the voice's natural pace.")
    sample_rate: int | None = Field(None, description="Output rate in Hz; the engine's own if omitted.")
    callback_url: CallbackUrl | None = Field(
        None, description="POSTed the finished job, signed with the tenant's webhook secret (X-Voicefarm-Signature)."
    )
    timestamps: StrictBool = Field(
        False,
        description="Also time each word: GET /v1/jobs/{id}/timestamps and captions.vtt / captions.srt once aligned. "
        "A cache hit that asks for them is recorded as a job (200, cache: hit).",
    )


class AttemptOut(BaseModel):
    engine: str
    segment: int | None = Field(None, description="The document's segment it spoke; null: the job itself.")
    worker: str
    outcome: str
    error: str | None
    started_at: datetime
    finished_at: datetime | None


class SegmentsOut(BaseModel):
    """A document's progress: it is spoken in segments, by every worker of its engine."""

    total: int
    done: int = Field(description="Segments whose audio is ready, cached ones included.")
    cached: int = Field(description="Segments whose audio was stored already: not synthesized again.")
    attempts: int = Field(description="Attempts on its segments; only the ones that failed are listed in the job's.")


class Timings(BaseModel):
    queued: datetime | None = None
    started: datetime | None = None
    finished: datetime | None = None


class JobOut(BaseModel):
    id: str | None = Field(description="The job's id; null for a cache hit, which made no job.")
    status: Literal["queued", "running", "succeeded", "failed", "canceled"]
    cache: Literal["hit", "miss"] = "miss"
    poll_url: str | None = None
    engine: str | None = None
    voice: str | None = None
    spoken_voice: str | None = Field(
        None, description="The voice the engine speaks: a cloned voice's fallback on an engine that cannot clone."
    )
    language: str | None = None
    quality: str | None = None
    format: str
    content_key: str
    audio_url: str | None = None
    duration: float | None = None
    sample_rate: int | None = None
    synthesis_seconds: float | None = None
    error: str | None = None
    timestamps_url: str | None = Field(None, description="Where its word timestamps are, when it asked for them.")
    timings: Timings = Timings()
    attempts: list[AttemptOut] = []
    segments: SegmentsOut | None = Field(None, description="A long text's progress; null for a short one.")


class WordOut(BaseModel):
    text: str = Field(description="A word of the job's text as written, punctuation included.")
    start: float = Field(description="Seconds from the start of the audio.")
    end: float


class TimestampsOut(BaseModel):
    words: list[WordOut] = Field(
        description="Every word of the text (split at whitespace), once each, in order; times never decrease."
    )
    source: Literal["engine", "aligned", "estimated"] = Field(
        description="engine: the engine's own alignment; aligned: speech recognition matched to the text; "
        "estimated: a language the recognizer cannot hear, its speech (by VAD) shared by characters."
    )


class VoiceOut(BaseModel):
    id: str
    language: str
    name: str
    engine: str | None = Field(description="The engine of a built-in voice; null for a cloned one.")
    sample_rate: int
    available: bool = Field(
        True,
        description="False while the voice's engine has no live worker: its jobs "
        "wait in the engine's queue, or go to another engine of the tier.",
    )
    cloned: bool = False
    version: str = "1"
    fallback_voice: str | None = None
    description: str | None = None
    created_at: datetime | None = None


class SampleAnalysis(BaseModel):
    duration: float
    sample_rate: int
    channels: int
    format: str
    loudness_lufs: float
    peak_dbfs: float
    snr_db: float
    speech_ratio: float
    clipping_ratio: float
    warnings: list[str]


class ClonedVoiceOut(VoiceOut):
    analysis: SampleAnalysis
    recommended_seconds: str = Field(description="What makes a good sample.")


class Problem(BaseModel):
    """Every error the API returns: a message that names the problem."""

    error: str


# A submission's 429 (over one of the tenant's limits) and 503 (a voice its engines have yet to
# advertise) carry it in the OpenAPI schema.
RETRY_AFTER = {"Retry-After": {"description": "Seconds after which to try again", "schema": {"type": "integer"}}}


class BatchItemRequest(JobRequest):
    callback_url: None = Field(None, exclude=True, description="Not per item: give the batch a callback_url.")


class BatchRequest(BaseModel):
    """Items, or phrases × voices with shared options."""

    # Exactly one of items and phrases, as _one_kind checks; said in the schema too.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [{"required": [kind], "properties": {kind: {"type": "array"}}} for kind in ("items", "phrases")]
        },
    )

    items: list[BatchItemRequest] | None = None
    phrases: list[Text] | None = None
    voices: list[Name] | None = Field(None, description="With phrases: each phrase in each voice.")
    language: Language | None = None
    quality: Text | None = None
    format: Text = "wav"
    speed: float = 1.0
    sample_rate: int | None = None
    timestamps: StrictBool = False
    callback_url: CallbackUrl | None = Field(None, description="POSTed the finished batch, signed like job callbacks.")

    @model_validator(mode="after")
    def _one_kind(self) -> BatchRequest:
        if (self.items is None) == (self.phrases is None):
            raise ValueError("give either items or phrases (with voices)")
        return self

    def expand(self) -> list[BatchItemRequest]:
        if self.items is not None:
            return self.items
        voices: list[str | None] = list(self.voices) if self.voices else [None]
        return [
            BatchItemRequest(
                text=text,
                voice=voice,
                language=self.language,
                quality=self.quality,
                format=self.format,
                speed=self.speed,
                sample_rate=self.sample_rate,
                timestamps=self.timestamps,
            )
            for voice in voices
            for text in self.phrases or []
        ]


class BatchCounts(BaseModel):
    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    canceled: int = 0


class BatchFailure(BaseModel):
    index: int
    text: str
    voice: str | None
    error: str | None


class BatchItem(BaseModel):
    index: int
    text: str
    voice: str | None
    format: str
    job_id: str | None
    audio_url: str | None


class BatchOut(BaseModel):
    id: str
    status: Literal["running", "done"]
    total: int
    counts: BatchCounts
    progress: float
    segments: SegmentsOut | None = Field(None, description="Its long texts' segments, together; null if it has none.")
    poll_url: str | None = None
    failed: list[BatchFailure] = []
    manifest: list[BatchItem] = Field([], description="Every item's audio, once the batch is done.")


class BatchSummary(BaseModel):
    """A batch in a list: its counts, without the manifest (GET /v1/batches/{id} has it)."""

    id: str
    status: Literal["running", "done"]
    total: int
    counts: BatchCounts
    progress: float
    poll_url: str
    created_at: datetime


class EngineRates(BaseModel):
    attempts: int = Field(description="Attempts that finished on the engine in the window.")
    failed: int = Field(description="Of those, failed or lost.")
    fallbacks: int = Field(description="Of those, the ones that moved their job on to the next engine.")


class RatesOut(BaseModel):
    """What the farm did over a recent window, from the attempts and jobs that finished in it."""

    window_seconds: int
    engines: dict[str, EngineRates]
    jobs_finished: int
    jobs_failed: int


class TenantOut(BaseModel):
    id: str
    webhook_secret: str = Field(description="Verifies callbacks: HMAC-SHA256 of '<t>.<body>'.")
