"""The exporter sums what every process of a worker counted, and keeps the counts of a child that
has exited: prometheus_client's multiprocess mode, set up before the client is imported. Each
case runs in a fresh interpreter, as a worker does."""

from __future__ import annotations

import subprocess
import sys
import textwrap

WORKER = textwrap.dedent(
    """
    import os, sys, urllib.request

    from voicefarm.telemetry import exporter

    port = exporter.serve("127.0.0.1", 0)
    from voicefarm.telemetry import counters

    counters.attempts.labels("piper", "succeeded").inc()  # the main process (the `lost` errback)
    for n in (2, 3):  # two pool children, each gone once it has counted
        pid = os.fork()
        if pid == 0:
            counters.attempts.labels("piper", "succeeded").inc(n)
            counters.synthesis_seconds.labels("piper").observe(0.3 * n)
            os._exit(0)
        os.waitpid(pid, 0)
    sys.stdout.write(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode())
    """
)


def scrape_of(script: str) -> str:
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_counts_of_exited_children_are_summed_with_the_main_process() -> None:
    text = scrape_of(WORKER)
    assert 'voicefarm_attempts_total{engine="piper",outcome="succeeded"} 6.0' in text
    assert 'voicefarm_synthesis_seconds_count{engine="piper"} 2.0' in text
    assert 'voicefarm_synthesis_seconds_bucket{engine="piper",le="1.0"} 2.0' in text
    assert 'voicefarm_synthesis_seconds_bucket{engine="piper",le="0.5"} 0.0' in text


def test_serving_after_the_client_was_imported_fails_loudly() -> None:
    script = "import prometheus_client\nfrom voicefarm.telemetry import exporter\nexporter.serve('127.0.0.1', 0)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "imported before its multiprocess directory was set" in done.stderr


def test_a_worker_starts_with_its_series_at_zero() -> None:
    script = textwrap.dedent(
        """
        import sys, urllib.request
        from voicefarm.telemetry import exporter

        port = exporter.serve("127.0.0.1", 0)
        from voicefarm.telemetry import counters
        from voicefarm.settings import Settings

        counters.initialise_worker("xtts", Settings(tiers={"high": ["xtts", "styletts2", "piper"], "fast": ["piper"]}))
        sys.stdout.write(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode())
        """
    )
    text = scrape_of(script)
    for outcome in ("succeeded", "failed", "lost"):
        assert f'voicefarm_attempts_total{{engine="xtts",outcome="{outcome}"}} 0.0' in text
    assert 'voicefarm_fallbacks_total{from_engine="xtts",to_engine="styletts2"} 0.0' in text
    assert 'voicefarm_fallbacks_total{from_engine="xtts",to_engine="piper"} 0.0' in text
    assert 'from_engine="piper"' not in text
    assert 'voicefarm_job_latency_seconds_count{engine="xtts"} 0.0' in text
