"""Prometheus metrics for the API's /metrics: the farm's state, read at scrape time, plus the
cache-hit counter this process keeps."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from voicefarm import db, stats
from voicefarm.breaker import tripped
from voicefarm.heartbeat import live_workers, self_test_failures
from voicefarm.settings import get_settings

registry = CollectorRegistry()
cache_requests = Counter(
    "voicefarm_cache_requests", "Submissions answered from the cache (hit) or not (miss)", ["result"], registry=registry
)


def _histogram(name: str, doc: str, data: stats.Histogram, buckets: tuple[float, ...]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=["engine"])
    for engine, (counts, total, count) in data.items():
        family.add_metric([engine], [*zip(map(str, buckets), counts, strict=True), ("+Inf", count)], total)
    return family


class FarmCollector:
    def collect(self) -> Iterator[Metric]:
        settings = get_settings()
        with db.session() as s:
            jobs = GaugeMetricFamily("voicefarm_jobs", "Jobs by state and engine", labels=["state", "engine"])
            for (state, engine), n in stats.jobs_by_state(s).items():
                jobs.add_metric([state, engine], n)
            yield jobs
            attempts = CounterMetricFamily(
                "voicefarm_attempts", "Synthesis attempts by engine and outcome", labels=["engine", "outcome"]
            )
            for (engine, outcome), n in stats.attempts_by_outcome(s).items():
                attempts.add_metric([engine, outcome], n)
            yield attempts
            moved = CounterMetricFamily(
                "voicefarm_fallbacks", "Jobs moved from one engine to the next", labels=["from_engine", "to_engine"]
            )
            for (src, dst), n in stats.fallbacks(s).items():
                moved.add_metric([src, dst], n)
            yield moved
            yield _histogram(
                "voicefarm_synthesis_seconds",
                "Engine time per job",
                stats.synthesis_seconds(s),
                stats.SYNTHESIS_BUCKETS,
            )
            yield _histogram(
                "voicefarm_real_time_factor",
                "Synthesis seconds per audio second",
                stats.real_time_factor(s),
                stats.RTF_BUCKETS,
            )
            yield _histogram(
                "voicefarm_job_latency_seconds",
                "Submission to finished audio",
                stats.job_latency(s),
                stats.LATENCY_BUCKETS,
            )
            chars = CounterMetricFamily(
                "voicefarm_tts_characters", "Characters synthesized, for cost tracking", labels=["engine", "tenant"]
            )
            for (engine, tenant), n in stats.characters(s).items():
                chars.add_metric([engine, tenant], n)
            yield chars
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
