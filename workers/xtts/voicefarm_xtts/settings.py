"""The XTTS engine's own settings, from VOICEFARM_XTTS_* variables: only XTTS workers read them."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class XttsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICEFARM_XTTS_")

    model_dir: Path | None = None  # config.json, model.pth, vocab.json; never downloaded
    device: str | None = None  # default: cuda when there is a GPU, else cpu
    latents_cache_size: int = 64  # voices whose latents a worker keeps in memory
    stream_chunk_size: int = Field(20, ge=1)  # GPT codes per streamed chunk (coqui's default)
    # Texts whose GPT steps one worker decodes together (voicefarm_xtts.batcher); 1: coqui's own.
    batch_size: int = Field(1, ge=1)
