"""For ops: engines, the cache, Prometheus metrics. Engines and cache need an admin key;
/metrics is open to the scraper like /healthz (it names tenants, so keep it on the inside)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import func, select

from voicefarm.api.deps import DB, Admin
from voicefarm.fleet.breaker import tripped
from voicefarm.fleet.catalog import get_catalog
from voicefarm.fleet.heartbeat import live_workers, self_test_failures
from voicefarm.library import renditions
from voicefarm.library.cache import get_cache
from voicefarm.schemas import RatesOut
from voicefarm.settings import get_settings
from voicefarm.store.models import Rendition, utcnow
from voicefarm.store.objects import get_store
from voicefarm.telemetry import stats
from voicefarm.telemetry.metrics import cache_requests, registry

router = APIRouter(tags=["ops"])


class EngineOut(BaseModel):
    name: str
    # "up", "degraded: <last error>", "no live worker", or, with no live worker, why a worker
    # could not start: "failed self-test: <reason>" or "unavailable: <reason>"
    status: str
    live_workers: int
    degraded_until: datetime | None  # while its breaker is open: chains skip it until then
    self_test_failures: dict[str, str]  # worker host -> why it could not start (self-test, unavailable)
    queue_depth: int
    jobs: dict[str, int]  # queued and running; finished ones are counted by the workers' metrics
    # Over the engine's last stats.RECENT_JOBS syntheses: how it does now.
    mean_synthesis_seconds: float | None
    mean_real_time_factor: float | None
    # The engine's last known capabilities, as its workers advertised them; empty when none has.
    cloning: bool
    languages: list[str]
    model_version: str
    device: str | None
    concurrency: int  # jobs one worker process serves at once (a batching engine), else 1


@router.get("/v1/engines", response_model=list[EngineOut])
def engines(s: DB, _: Admin) -> list[EngineOut]:
    settings = get_settings()
    live, depth, jobs = live_workers(s, settings), stats.queue_depths(settings), stats.active_jobs(s)
    breakers, failures, known = tripped(s), self_test_failures(s), get_catalog().engines
    out = []
    # The configured engines, then any other a worker has advertised or failed to start.
    names = list(dict.fromkeys([*settings.engines, *sorted({*known, *failures} - set(settings.engines))]))
    means = stats.recent_means(s, names)
    for name in names:
        caps = known.get(name)
        failed = failures.get(name, {})
        if not live.get(name):
            status = next(iter(failed.values()), "no live worker")
        elif name in breakers:
            status = f"degraded: {breakers[name].reason}"
        else:
            status = "up"
        out.append(
            EngineOut(
                name=name,
                status=status,
                live_workers=live.get(name, 0),
                queue_depth=depth.get(name, 0),
                degraded_until=breakers[name].until if name in breakers else None,
                self_test_failures=failed,
                jobs={state: n for (state, engine), n in jobs.items() if engine == name},
                mean_synthesis_seconds=means[name][0],
                mean_real_time_factor=means[name][1],
                cloning=bool(caps and caps.cloning),
                languages=sorted(caps.languages) if caps else [],
                model_version=caps.model_version if caps else "unknown",
                device=caps.device if caps else None,
                concurrency=caps.concurrency if caps else 1,
            )
        )
    return out


class CacheStats(BaseModel):
    renditions: int
    audio_seconds: float
    by_engine: dict[str, int]
    redis_keys: int | None  # None when the farm runs without Redis
    hits: int  # since this API process started
    misses: int


@router.get("/v1/cache/stats", response_model=CacheStats)
def cache_stats(s: DB, _: Admin) -> CacheStats:
    count, seconds = s.execute(select(func.count(), func.coalesce(func.sum(Rendition.duration), 0.0))).one()
    by_engine = dict(s.execute(select(Rendition.engine, func.count()).group_by(Rendition.engine)).all())
    return CacheStats(
        renditions=count,
        audio_seconds=float(seconds),
        by_engine=by_engine,
        redis_keys=get_cache().size(),
        hits=int(cache_requests.labels("hit")._value.get()),
        misses=int(cache_requests.labels("miss")._value.get()),
    )


@router.get("/v1/rates", response_model=RatesOut)
def rates(s: DB, _: Admin) -> RatesOut:
    """Attempts, failures and fallbacks per engine, and jobs finished and failed, over the last
    hour: what the Grafana panels of failure and fallback rates show, without a Prometheus."""
    return stats.recent_rates(s, utcnow())


@router.delete("/v1/cache")
def clear_cache(s: DB, _: Admin, voice: str | None = None) -> dict[str, int]:
    """Delete cached audio, all of it or one voice's: objects, cache keys and records."""
    return {"deleted": renditions.purge(s, get_store(), get_cache(), voice=voice)}


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
