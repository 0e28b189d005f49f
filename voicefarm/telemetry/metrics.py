"""The API's /metrics: gauges of the farm's present state, read at scrape time from the database
(active jobs only, workers, breakers) and the broker, plus the cache-hit counter this process
keeps. What the work did over time (attempts, fallbacks, histograms, characters) is counted by
the workers themselves and served from their own endpoints (voicefarm.telemetry.counters)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric

from voicefarm.fleet.breaker import tripped
from voicefarm.fleet.heartbeat import live_workers, self_test_failures
from voicefarm.settings import get_settings
from voicefarm.store import db
from voicefarm.store.models import ACTIVE
from voicefarm.telemetry import stats

registry = CollectorRegistry()
cache_requests = Counter(
    "voicefarm_cache_requests", "Submissions answered from the cache (hit) or not (miss)", ["result"], registry=registry
)


class FarmCollector:
    def collect(self) -> Iterator[Metric]:
        settings = get_settings()
        with db.session() as s:
            jobs = GaugeMetricFamily("voicefarm_jobs", "Queued and running jobs by engine", labels=["state", "engine"])
            active = stats.active_jobs(s)
            for engine in dict.fromkeys([*settings.engines, *(engine for _, engine in active)]):
                for state in ACTIVE:
                    jobs.add_metric([state, engine], active.get((state, engine), 0))
            yield jobs
            live = GaugeMetricFamily("voicefarm_live_workers", "Worker processes alive per engine", labels=["engine"])
            alive = live_workers(s, settings)
            for engine in settings.engines:
                live.add_metric([engine], alive.get(engine, 0))
            yield live
            degraded = GaugeMetricFamily(
                "voicefarm_engine_degraded",
                "1 while the engine's circuit breaker keeps it out of every chain",
                labels=["engine"],
            )
            broken = GaugeMetricFamily(
                "voicefarm_engine_self_test_failed",
                "Worker hosts whose engine failed its self-test (they take no jobs)",
                labels=["engine"],
            )
            open_breakers, failures = tripped(s), self_test_failures(s)
            for engine in settings.engines:
                degraded.add_metric([engine], int(engine in open_breakers))
                broken.add_metric([engine], len(failures.get(engine, {})))
            yield degraded
            yield broken
        depth = GaugeMetricFamily("voicefarm_queue_depth", "Jobs waiting per engine queue", labels=["engine"])
        for engine, n in stats.queue_depths(settings).items():
            depth.add_metric([engine], n)
        yield depth


registry.register(FarmCollector())
