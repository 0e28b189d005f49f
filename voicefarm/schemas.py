"""The API's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

# No control characters but tab and line breaks: a NUL cannot be stored (PostgreSQL refuses it)
# and the rest are never speech. As a pattern, so the OpenAPI schema carries the rule too.
PRINTABLE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
Text = Annotated[str, Field(pattern=PRINTABLE)]


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text = Field(description="What to say.")
    voice: Text | None = Field(None, description="A voice id from GET /v1/voices; the farm's default if omitted.")
    language: Text | None = Field(None, description="BCP-47 tag such as en or en-US; the voice's own if omitted.")
    quality: Text | None = Field(None, description="Quality tier: highest, high, medium or fast.")
    format: Text = Field(
        "wav",
        description="wav, flac, mp3, ogg (Vorbis), opus (Ogg Opus), aac (ADTS) or pcm (raw 16-bit little-endian mono).",
    )
    speed: float = Field(1.0, description="Speaking rate; 1.0 is the voice's natural pace.")
    sample_rate: int | None = Field(None, description="Output rate in Hz (8000–48000); the engine's own if omitted.")
    callback_url: HttpUrl | None = Field(
        None, description="POSTed the finished job, signed with the tenant's webhook secret (X-Voicefarm-Signature)."
    )


class AttemptOut(BaseModel):
    engine: str
    worker: str
    outcome: str
    error: str | None
    started_at: datetime
    finished_at: datetime | None


class Timings(BaseModel):
    queued: datetime | None = None
    started: datetime | None = None
    finished: datetime | None = None


class JobOut(BaseModel):
    id: str | None = Field(description="The job's id; null for a cache hit, which made no job.")
    status: Literal["queued", "running", "succeeded", "failed"]
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
    timings: Timings = Timings()
    attempts: list[AttemptOut] = []


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


class BatchItemRequest(JobRequest):
    callback_url: None = Field(None, exclude=True, description="Not per item: give the batch a callback_url.")


class BatchRequest(BaseModel):
    """Items, or phrases × voices with shared options."""

    model_config = ConfigDict(extra="forbid")

    items: list[BatchItemRequest] | None = None
    phrases: list[Text] | None = None
    voices: list[Text] | None = Field(None, description="With phrases: each phrase in each voice.")
    language: Text | None = None
    quality: Text | None = None
    format: Text = "wav"
    speed: float = 1.0
    sample_rate: int | None = None
    callback_url: HttpUrl | None = Field(None, description="POSTed the finished batch, signed like job callbacks.")

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
            )
            for voice in voices
            for text in self.phrases or []
        ]


class BatchCounts(BaseModel):
    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0


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
    poll_url: str | None = None
    failed: list[BatchFailure] = []
    manifest: list[BatchItem] = Field([], description="Every item's audio, once the batch is done.")


class TenantOut(BaseModel):
    id: str
    webhook_secret: str = Field(description="Verifies callbacks: HMAC-SHA256 of '<t>.<body>'.")
