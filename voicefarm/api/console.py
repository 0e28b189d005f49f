"""The browser console: static files at /console (voicefarm/console), served without a key since
they hold no data; every call they make to the API carries the key the visitor signed in with.
Also what the pages need to know of the farm's configuration, which is no tenant's data either."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from voicefarm.audio.codec import FORMATS
from voicefarm.audio.reference import QUIET_LUFS, SILENT_PEAK_DBFS
from voicefarm.settings import get_settings

FILES = Path(__file__).resolve().parent.parent / "console"
DASHBOARD_UID = "voicefarm-overview"  # deploy/grafana/dashboards/voicefarm.json
# The dashboard's panel each figure of the Ops page mirrors (tests/unit/test_console_config.py
# holds them to the dashboard's titles).
PANELS = {
    "queue_depth": 2,
    "live_workers": 3,
    "failure_rate": 7,
    "fallback_rate": 8,
    "job_failure_rate": 10,
    "real_time_factor": 14,
    "cache_hit_ratio": 17,
}

router = APIRouter(include_in_schema=False)


class VoiceLimits(BaseModel):
    """What an uploaded sample is judged against (voicefarm.audio.reference.judge)."""

    min_seconds: float
    recommended_seconds: float
    max_seconds: float
    min_snr_db: float
    max_clipping_ratio: float
    min_speech_ratio: float
    quiet_lufs: float
    silent_peak_dbfs: float


class ConsoleConfig(BaseModel):
    grafana_dashboard: str  # the dashboard's URL; a panel is `?viewPanel=<id>` on it
    grafana_panels: dict[str, int]
    voice_limits: VoiceLimits
    tiers: list[str]
    default_quality: str
    default_voice: str
    max_text_chars: int
    formats: list[str]
    min_speed: float
    max_speed: float


@router.get("/console")
def console_root() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=308)


@router.get("/console/config.json", response_model=ConsoleConfig)
def config() -> ConsoleConfig:
    settings = get_settings()
    return ConsoleConfig(
        grafana_dashboard=f"{settings.grafana_url.rstrip('/')}/d/{DASHBOARD_UID}/voicefarm",
        grafana_panels=PANELS,
        voice_limits=VoiceLimits(
            min_seconds=settings.voice_min_seconds,
            recommended_seconds=settings.voice_recommended_seconds,
            max_seconds=settings.voice_max_seconds,
            min_snr_db=settings.voice_min_snr_db,
            max_clipping_ratio=settings.voice_max_clipping_ratio,
            min_speech_ratio=settings.voice_min_speech_ratio,
            quiet_lufs=QUIET_LUFS,
            silent_peak_dbfs=SILENT_PEAK_DBFS,
        ),
        tiers=list(settings.tiers),
        default_quality=settings.default_quality,
        default_voice=settings.default_voice,
        max_text_chars=settings.max_text_chars,
        formats=list(FORMATS),
        min_speed=settings.min_speed,
        max_speed=settings.max_speed,
    )


# Mounted after the routes above, which it would otherwise shadow.
files = StaticFiles(directory=FILES, html=True)
