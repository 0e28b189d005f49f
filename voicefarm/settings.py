"""One settings object, read from `VOICEFARM_*` environment variables.

The defaults are the embedded farm: a filesystem broker, SQLite, a local object store and no
Redis, all under `data_dir`, so one machine runs the whole path with no servers. Production
points the same fields at Redis, PostgreSQL and an S3 endpoint.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_TIERS: dict[str, list[str]] = {
    "highest": ["styletts2", "xtts", "google", "piper"],
    "high": ["xtts", "styletts2", "google", "piper"],
    "medium": ["piper", "xtts", "google"],
    "fast": ["piper", "google"],
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICEFARM_", env_nested_delimiter="__")

    data_dir: Path = Path(".voicefarm")

    # Empty means "derive the embedded default from data_dir".
    database_url: str = ""
    broker_url: str = ""
    redis_url: str = ""  # URL cache; empty disables it (the database still answers)
    storage_url: str = ""  # file:///dir or s3://bucket[/prefix]

    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_presign_seconds: int = 3600

    api_host: str = "127.0.0.1"
    api_port: int = 8000

    engines: list[str] = Field(default_factory=lambda: ["piper"])
    tiers: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_TIERS))
    default_voice: str = "en_US-joe-medium"
    default_quality: str = "fast"

    max_text_chars: int = 5000
    min_speed: float = 0.5
    max_speed: float = 2.0
    cache_ttl_seconds: int = 7 * 24 * 3600

    task_soft_time_limit: int = 120
    task_time_limit: int = 150
    filesystem_polling_interval: float = 0.05

    # Uploaded reference samples (voice cloning): limits a sample must meet.
    voice_max_upload_bytes: int = 10 * 1024 * 1024
    voice_min_seconds: float = 3.0
    voice_recommended_seconds: float = 6.0
    voice_max_seconds: float = 30.0
    voice_min_sample_rate: int = 16000
    voice_min_snr_db: float = 15.0
    voice_max_clipping_ratio: float = 0.01
    voice_min_speech_ratio: float = 0.3
    voice_sample_rate: int = 24000  # stored samples are mono at this rate

    piper_voices_dir: Path | None = None  # extra *.onnx voices beside the bundled one

    xtts_model_dir: Path | None = None  # config.json, model.pth, vocab.json; never downloaded
    xtts_device: str | None = None  # default: cuda when there is a GPU, else cpu
    xtts_latents_cache_size: int = 64  # voices whose latents a worker keeps in memory

    @model_validator(mode="after")
    def _embedded_defaults(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'voicefarm.db'}"
        if not self.broker_url:
            self.broker_url = "filesystem://"
        if not self.storage_url:
            self.storage_url = (self.data_dir / "objects").as_uri()
        if self.task_time_limit <= self.task_soft_time_limit:
            raise ValueError("task_time_limit must exceed task_soft_time_limit")
        return self

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url.startswith("filesystem://")

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "broker"


@lru_cache
def get_settings() -> Settings:
    return Settings()
