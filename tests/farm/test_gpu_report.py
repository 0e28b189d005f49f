"""The GPU report kit (bench/gpu_report.py), run here as on a GPU host but on the CPU with the
tests' tiny models: every engine's real code, fixed lengths, and the embedded farm end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.lengths import LENGTH_SCALE, TEXTS
from tests.farm.conftest import ROOT

SAMPLES_PER_CODE = 1024 / 22_050 * 24_000  # XTTS: a code is 1024 samples at 22.05 kHz, decoded at 24 kHz


def test_the_gpu_report_runs_on_the_cpu_with_tiny_models(tmp_path: Path) -> None:
    # The embedded default, as on the GPU host: none of this tier's servers.
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEFARM_")}
    command = [sys.executable, "-m", "bench.gpu_report", "--tiny", "--device", "cpu", "--texts", "1"]
    run = subprocess.run([*command, "--out", str(tmp_path)], env=env, cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((tmp_path / "gpu-report.json").read_text())

    assert report["sizes"] == "tiny" and report["texts"] == 1 and report["gpu"] == "cpu"
    env[LENGTH_SCALE] = "0.5"  # what the report set for its processes
    codes = json.loads(
        subprocess.run(
            [sys.executable, "-c", f"from bench.lengths import codes_for; print(codes_for({TEXTS[0]!r}))"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert report["codes"] == [codes]
    for mode in ("fp32", "bf16"):
        xtts = report["xtts"][mode]
        # Fixed length: the text's audio is exactly the codes its speech takes.
        # (less the few ms that the stream's overlaps trim)
        assert abs(xtts["audio_seconds"] * 24_000 - codes * SAMPLES_PER_CODE) < 0.05 * codes * SAMPLES_PER_CODE, xtts
        assert xtts["rtf_p50"] > 0 and 0 < xtts["first_chunk_ms_p50"] <= xtts["first_chunk_ms_p95"]
        assert xtts["peak_vram_mb"] is None  # no GPU here
        # A cloned voice's latents: computed once, then from the cache.
        assert xtts["latents_computed"] == 1 and xtts["latents_ms_cached"] < xtts["latents_ms_first"]
        styletts2 = report["styletts2"][mode]
        assert styletts2["texts"] == 1 and styletts2["rtf_p50"] > 0 and styletts2["audio_seconds"] > 0
    for engine in ("xtts", "styletts2"):
        assert report[engine]["bf16"]["snr_db_vs_fp32"] > 0
    # Continuous batching: B = 2 made the same audio as one job at a time, and has its ratios.
    batching = report["xtts_batching"]
    one, two = batching["runs"]
    assert (one["batch"], two["batch"], one["jobs"], two["jobs"]) == (1, 2, 2, 2)
    assert one["audio_s"] == two["audio_s"] > 0
    assert batching["b2_over_b1"] > 0 and batching["b2_first_chunk_p95_over_b1"] > 0
    farm = report["farm"]
    assert farm["texts"] == 1
    assert 0 < farm["first_audio_ms_p50"] <= farm["end_to_end_ms_p50"]
    assert 0 < farm["overhead_ms_p50"] < farm["end_to_end_ms_p50"]
    table = (tmp_path / "gpu-report.md").read_text()
    assert "| XTTS real-time factor p50 |" in table and "| farm overhead p50" in table and "| B = 2 |" in table
