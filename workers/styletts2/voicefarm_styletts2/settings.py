"""The StyleTTS2 engine's own settings, from VOICEFARM_STYLETTS2_* variables: only StyleTTS2
workers read them."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class StyleTTS2Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICEFARM_STYLETTS2_")

    # Models/LibriTTS/ and Utils/ as upstream lays them out; never downloaded.
    model_dir: Path | None = None
    device: str | None = None  # default: cuda when there is a GPU, else cpu
    style_cache_size: int = 64  # voices whose style vectors a worker keeps in memory
