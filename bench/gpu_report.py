"""The GPU report (issue 23): XTTS v2 and StyleTTS2 at their released sizes, fp32 against bf16
autocast with TF32, then XTTS end to end through the embedded farm on `--gpu 0`. Writes
gpu-report.json and gpu-report.md to --out.

On a lent GPU host, after `make gpu-wheels` here and installing each group under /tmp/site:
    PYTHONPATH=.:/tmp/site/core python3 -m bench.gpu_report --site /tmp/site --out $OUT
Here, on the CPU with the tests' tiny models (tests/farm/test_gpu_report.py), so it never rots:
    .venv/bin/python -m bench.gpu_report --tiny --device cpu --texts 2 --out DIR
Each engine runs in its own environment (a process of its own); the farm's processes too.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

from bench.lengths import CODES_PER_SECOND, LENGTH_SCALE, TEXTS, codes_for
from voicefarm.fleet.selftest import voiced_signal

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("xtts", "styletts2")


def engine_command(engine: str, site: Path | None) -> tuple[list[str], dict[str, str]]:
    """How to run Python in `engine`'s environment: its worker venv here, or this interpreter
    over the wheels installed for it under `site` on the GPU host."""
    if site is None:
        return [str(ROOT / "workers" / engine / ".venv" / "bin" / "python")], {"PYTHONPATH": str(ROOT)}
    # The checkout first: its voicefarm finds alembic's scripts, which no wheel carries.
    path = [ROOT, site / engine, site / "core", ROOT / "bench" / "offline"]
    return [sys.executable], {"PYTHONPATH": os.pathsep.join(map(str, path))}


def measure_engine(engine: str, args: argparse.Namespace, work: Path) -> dict:
    python, env = engine_command(engine, args.site)
    out = args.out / f"{engine}.json"  # beside the report: kept if a later step runs out of time
    command = [*python, "-m", f"bench.gpu_{engine}", "--device", args.device, "--texts", str(args.texts)]
    command += ["--work", str(work), "--out", str(out), *(["--tiny"] if args.tiny else [])]
    started = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, **env}, cwd=ROOT)
    print(f"{engine}: measured in {time.perf_counter() - started:.0f} s", flush=True)
    result: dict = json.loads(out.read_text())
    return result


def measure_batching(args: argparse.Namespace, work: Path) -> dict:
    """Issue 24's continuous batching at the worker's defaults (bench.xtts_batching), on the
    checkpoint bench.gpu_xtts built: B jobs at once against one at a time. Measured last."""
    python, env = engine_command("xtts", args.site)
    out = args.out / "xtts-batching.json"
    sizes, jobs = ("1,2", 2) if args.tiny else ("1,2,4,8,16", 16)
    model_dir = work / ("xtts-tiny" if args.tiny else "xtts-released")
    command = [*python, "-m", "bench.xtts_batching", "--device", args.device, "--model-dir", str(model_dir)]
    command += ["--sizes", sizes, "--jobs", str(jobs), "--json", str(out)]
    started = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, **env}, cwd=ROOT)
    print(f"xtts batching: measured in {time.perf_counter() - started:.0f} s", flush=True)
    result: dict = json.loads(out.read_text())
    return result


def reference_sample(rate: int = 22_050) -> bytes:
    """A WAV of five voiced syllables with quiet between them: a voice upload's analysis takes
    it for one speaker in a quiet room (selftest's signal alone has no quiet to measure noise by)."""
    rng = np.random.default_rng(0)
    parts = []
    for n in range(5):
        parts += [voiced_signal(1.0, rate, f0=120 + 10 * n, seed=n), 0.0005 * rng.standard_normal(int(0.3 * rate))]
    wav = io.BytesIO()
    sf.write(wav, np.concatenate(parts).astype(np.float32), rate, format="WAV")
    return wav.getvalue()


def through_farm(args: argparse.Namespace, work: Path, texts: list[str]) -> dict:
    """XTTS texts end to end through the embedded farm (filesystem broker, SQLite, local store)
    with one XTTS worker, pinned with --gpu 0 on CUDA: submit to the last byte of /stream."""
    from voicefarm.ops.supervisor import Farm, free_port

    model_dir = work / ("xtts-tiny" if args.tiny else "xtts-released")  # built by bench.gpu_xtts
    _, path = engine_command("xtts", args.site)
    env = {
        "VOICEFARM_DATA_DIR": str(work / "farm"),
        "VOICEFARM_API_PORT": str(free_port()),
        "VOICEFARM_ENGINES": json.dumps(["xtts"]),
        "VOICEFARM_PLUGINS": json.dumps({"xtts": "bench.fixed_length:from_settings"}),
        "VOICEFARM_XTTS_MODEL_DIR": str(model_dir),
        "VOICEFARM_XTTS_DEVICE": args.device,
        "HF_HUB_OFFLINE": "1",
        # The worker imports bench.fixed_length; on the GPU host every process finds its wheels here.
        "PYTHONPATH": path["PYTHONPATH"],
    }
    os.environ.update(env)
    from voicefarm.settings import get_settings
    from voicefarm.store import db
    from voicefarm.tenancy.auth import create_key

    get_settings.cache_clear()
    settings = get_settings()
    subprocess.run([sys.executable, "-m", "voicefarm", "migrate"], check=True, capture_output=True)
    with db.session() as s:
        key = create_key(s, "gpu-report")
    flags = ("--gpu", "0") if args.device == "cuda" else ()
    farm = Farm(settings, log_dir=work / "farm-logs", workers=["xtts"], worker_flags=flags)
    with farm, httpx.Client(base_url=farm.url, headers={"X-API-Key": key}, timeout=600) as http:
        started = time.perf_counter()
        farm.wait_ready(timeout=600)
        print(f"farm: ready in {time.perf_counter() - started:.0f} s", flush=True)
        voice = http.post(
            "/v1/voices",
            data={"name": "gpu report", "language": "en", "consent": "true"},
            files={"file": ("voice.wav", reference_sample(), "audio/wav")},
        )
        assert voice.status_code == 201, voice.text
        voice_id = voice.json()["id"]

        def one(text: str) -> tuple[float, float, float]:
            started = time.perf_counter()
            job = http.post("/v1/jobs", json={"text": text, "voice": voice_id, "quality": "high", "format": "wav"})
            assert job.status_code == 202, job.text
            first = None
            with http.stream("GET", f"/v1/jobs/{job.json()['id']}/stream", params={"format": "pcm"}) as audio:
                for _ in audio.iter_bytes():
                    first = first or time.perf_counter() - started
            total = time.perf_counter() - started
            done = http.get(f"/v1/jobs/{job.json()['id']}").json()
            assert done["status"] == "succeeded" and done["engine"] == "xtts", done
            assert first is not None
            return first, total, done["synthesis_seconds"]

        one("Warm up.")  # the worker's model loads before its first job
        print(f"farm: warmed up at {time.perf_counter() - started:.0f} s", flush=True)
        runs = [one(text) for text in texts]
    first, total, synthesis = (np.array(values) * 1000 for values in zip(*runs, strict=True))
    return {
        "texts": len(texts),
        "end_to_end_ms_p50": round(float(np.median(total)), 1),
        "first_audio_ms_p50": round(float(np.median(first)), 1),
        "first_audio_ms_p95": round(float(np.percentile(first, 95)), 1),
        "overhead_ms_p50": round(float(np.median(total - synthesis)), 1),
    }


def table(report: dict) -> str:
    """The report as Markdown, the targets of issue 23 beside each figure."""
    rows = ["| figure | fp32 | bf16 + TF32 | target |", "| --- | --- | --- | --- |"]

    def row(name: str, engine: str, key: str, target: str) -> None:
        values = [report[engine][mode].get(key) for mode in ("fp32", "bf16")]
        rows.append(f"| {name} | " + " | ".join("—" if v is None else f"{v}" for v in values) + f" | {target} |")

    row("XTTS real-time factor p50", "xtts", "rtf_p50", "≤ 0.05")
    row("XTTS first chunk p50 (ms)", "xtts", "first_chunk_ms_p50", "≤ 150")
    row("XTTS first chunk p95 (ms)", "xtts", "first_chunk_ms_p95", "")
    row("XTTS peak GPU memory (MiB)", "xtts", "peak_vram_mb", "≤ 4096")
    row("XTTS bf16 audio vs fp32, same codes (dB SNR)", "xtts", "snr_db_vs_fp32", "≥ 30")
    row("XTTS latents, first (ms)", "xtts", "latents_ms_first", "")
    row("XTTS latents, cached (ms)", "xtts", "latents_ms_cached", "")
    row("StyleTTS2 real-time factor p50", "styletts2", "rtf_p50", "≤ 0.01")
    row("StyleTTS2 first chunk p50 (ms)", "styletts2", "first_chunk_ms_p50", "")
    row("StyleTTS2 peak GPU memory (MiB)", "styletts2", "peak_vram_mb", "")
    row("StyleTTS2 bf16 audio vs fp32, same noise (dB SNR)", "styletts2", "snr_db_vs_fp32", "≥ 30")
    batching = report["xtts_batching"]
    base = batching["runs"][0]["batch"]
    batched = [
        "",
        "| XTTS, B jobs at once in one worker (issue 24) | audio s per wall s | × B=1 | first chunk p95 (s) | × B=1 |",
    ]
    batched.append("| --- | --- | --- | --- | --- |")
    for run in batching["runs"]:
        b = run["batch"]
        ratio = batching.get(f"b{b}_over_b{base}", 1.0)
        p95 = batching.get(f"b{b}_first_chunk_p95_over_b{base}", 1.0)
        batched.append(f"| B = {b} | {run['audio_per_wall']:.3f} | {ratio} | {run['first_chunk_p95_s']:.3f} | {p95} |")
    batched.append("| targets | | B=8 ≥ 4, B=16 ≥ 6 | | B=8 ≤ 2 |")
    farm = report["farm"]
    lines = [
        f"GPU report: {report['gpu']}, {report['date']}, {report['sizes']} sizes, random weights, "
        f"{report['texts']} texts at fixed lengths ({CODES_PER_SECOND} XTTS codes per second of speech).",
        "",
        # sm_90 is the H100's and H200's; sm_120 the RTX 5090's.
        f"torch {report['xtts']['torch']}, built for {', '.join(report['xtts']['arch_list']) or 'no GPU'}.",
        "",
        *rows,
        *batched,
        "",
        "| farm: one XTTS worker, its defaults (bf16 + TF32 on CUDA), embedded default | figure | target |",
        "| --- | --- | --- |",
        f"| end to end p50 (ms) | {farm['end_to_end_ms_p50']} | |",
        f"| first audio through /stream p50 (ms) | {farm['first_audio_ms_p50']} | ≤ first chunk + 30 |",
        f"| first audio through /stream p95 (ms) | {farm['first_audio_ms_p95']} | |",
        f"| farm overhead p50 (ms, end to end less synthesis) | {farm['overhead_ms_p50']} | ≤ 30 |",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny models (for a CPU run)")
    parser.add_argument("--texts", type=int, default=0, help="the first N of bench.lengths.TEXTS; 0 for all")
    parser.add_argument("--site", type=Path, help="on the GPU host: where each group of gpu-wheels is installed")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    texts = TEXTS[: args.texts] if args.texts else TEXTS
    if args.tiny:
        os.environ[LENGTH_SCALE] = "0.5"  # for every process below: paths checked, not costs
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="voicefarm-gpu-report-") as tmp:
        work = Path(tmp)
        report: dict = {
            "date": datetime.now(UTC).date().isoformat(),
            "sizes": "tiny" if args.tiny else "released",
            "texts": len(texts),
            "codes": [codes_for(t) for t in texts],
        }
        for engine in ENGINES:
            report[engine] = measure_engine(engine, args, work)
        report["gpu"] = report["xtts"]["device"]
        report["farm"] = through_farm(args, work, texts)
        report["xtts_batching"] = measure_batching(args, work)
    report["seconds"] = round(time.perf_counter() - started, 1)
    (args.out / "gpu-report.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "gpu-report.md").write_text(table(report))
    print(table(report))
    print(f"in {report['seconds']} s; written to {args.out}")


if __name__ == "__main__":
    main()
