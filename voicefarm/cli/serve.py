"""The farm's long-running processes: the API, an engine's worker, the webhook and alignment
workers, Flower, the reconciler; and whole farms in the foreground (`up`, `demo`).

Each command imports what it runs when it runs: a worker never loads the API, nor the API an
engine. Some of that order matters: a process that serves metrics starts serving them before
anything imports prometheus_client, and a worker pins its GPU before anything starts CUDA.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from voicefarm.cli.admin import migrate
from voicefarm.cli.output import console
from voicefarm.dispatch import brokers, names
from voicefarm.dispatch.names import engine_queue
from voicefarm.settings import Settings, get_settings


def api(
    host: Annotated[str | None, typer.Option(help="Bind address (VOICEFARM_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (VOICEFARM_API_PORT).")] = None,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
) -> None:
    """Serve the HTTP API."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "voicefarm.api.app:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        log_level="info",
    )


# The setting of each metrics-serving command's default port: one host may run them all, started
# one by one as the README's command table shows, so no two share one.
METRICS_PORTS = {"worker": "metrics_port", "reconcile": "reconciler_metrics_port"}


def serve_metrics(settings: Settings, port: int | None, command: str) -> None:
    """Serve this process's counts, and its pool children's, before anything counts: on `port`,
    else on the command's own default."""
    # Not above: the exporter must configure prometheus_client before anything imports it.
    from voicefarm.telemetry import exporter

    setting = METRICS_PORTS[command]
    port = int(getattr(settings, setting)) if port is None else port
    try:
        bound = exporter.serve(settings.api_host, port)
    except OSError as e:
        console.print(
            f"[red]cannot serve metrics on {settings.api_host}:{port}: {e}[/red]; give each {command} "
            f"on a host its own --metrics-port (VOICEFARM_{setting.upper()}), or 0 for any free port"
        )
        raise typer.Exit(1) from None
    console.print(f"metrics at http://{settings.api_host}:{bound}/metrics")


def metrics_port_option(command: str) -> Any:
    """--metrics-port, naming the setting and default it overrides for `command`."""
    setting = METRICS_PORTS[command]
    default = Settings.model_fields[setting].default
    return typer.Option(
        help=f"Serve this process's metrics on this port (VOICEFARM_{setting.upper()}, {default}; 0: any)."
    )


def worker(
    engine: Annotated[str, typer.Option(help="The engine whose queue (tts.ENGINE) this worker consumes.")],
    gpu: Annotated[int | None, typer.Option(help="Pin the worker to this GPU index.")] = None,
    concurrency: Annotated[
        int, typer.Option(help="Syntheses at once, each by a process with its own model (CPU engines).")
    ] = 1,
    pipeline: Annotated[
        bool,
        typer.Option(help="Two processes per synthesis: one stores and records a job, the other synthesizes the next."),
    ] = False,
    loglevel: Annotated[str, typer.Option()] = "info",
    metrics_port: Annotated[int | None, metrics_port_option("worker")] = None,
) -> None:
    """Run a Celery worker for one engine, once the engine has passed its self-test; each
    process loads the model before its first job. Exits 1 when the self-test fails. Its main
    process serves the counts of the worker's jobs at /metrics on --metrics-port. A pipelined
    worker keeps its engine busy while its jobs are stored and recorded (voicefarm.worker.slots)."""
    settings = get_settings()
    # First: the port is taken before a model loads for minutes, and the counters' storage is
    # chosen before anything imports the Prometheus client.
    serve_metrics(settings, metrics_port, "worker")
    from voicefarm import engines
    from voicefarm.fleet import selftest
    from voicefarm.telemetry import counters

    try:
        caps = engines.create(engine, settings).capabilities()
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--engine") from None
    if caps.unavailable:
        console.print(f"[red]engine {engine} cannot start:[/red] {caps.unavailable}")
        # Where /v1/engines shows it: the API has no engine code to find out for itself.
        selftest.record(engine, f"unavailable: {caps.unavailable}", caps.to_json())
        raise typer.Exit(1)
    if gpu is not None:
        # Before anything imports torch: CUDA reads this once, at initialisation.
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
        concurrency = 1  # one process per GPU; a second would fork after CUDA init or share the card
        pipeline = False  # for the same reason: a second process would be a second model and CUDA context on the card

    error = selftest.run(engine)
    selftest.record(engine, None if error is None else f"failed self-test: {error}", caps.to_json())
    if error is not None:
        # One plain line on stderr: what an orchestrator's log of the crash loop shows.
        typer.echo(f"engine {engine} failed its self-test; this worker takes no jobs: {error}", err=True)
        raise typer.Exit(1)
    # The worker's own modules, Celery among them, load only in a worker whose engine passed.
    from voicefarm.worker.run import ENGINE_ENV, THREADS_ENV

    os.environ[ENGINE_ENV] = engine
    pool, processes = "prefork", concurrency
    if caps.concurrency > 1:
        # One process, one model, and a thread per job that it serves at once: the engine batches
        # them (voicefarm.worker.limits says how each keeps its time limits; docs/operations.md why
        # late acks stay safe).
        pool, processes, pipeline = "threads", caps.concurrency, False
        os.environ[THREADS_ENV] = "1"
    if pipeline:
        from voicefarm.worker.slots import SLOTS_ENV

        processes = 2 * concurrency
        folder = tempfile.mkdtemp(prefix=f"voicefarm-slots-{engine}-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        os.environ[SLOTS_ENV] = f"{folder}:{concurrency}"
    counters.initialise_worker(engine, settings)
    from voicefarm.dispatch.app import get_celery
    from voicefarm.fleet.heartbeat import Heartbeat

    celery = get_celery()
    celery.steps["worker"].add(Heartbeat)

    argv = [
        "worker",
        "-Q",
        engine_queue(engine),
        "-P",
        pool,
        "-c",
        str(processes),
        "--prefetch-multiplier",
        "1",
        "-E",
        "-n",
        f"{engine}.{os.getpid()}@%h",
        "--loglevel",
        loglevel,
    ]
    celery.worker_main(argv + brokers.for_settings(settings).worker_flags())


def webhooks(concurrency: Annotated[int, typer.Option(help="Callbacks delivered at once.")] = 8) -> None:
    """Deliver job and batch callbacks (their own queue: a slow receiver never holds a synthesis)."""
    from voicefarm.dispatch.app import get_celery

    celery = get_celery()
    argv = [
        "worker",
        "-Q",
        names.WEBHOOK_QUEUE,
        "-P",
        "threads",
        "-c",
        str(concurrency),
        "-n",
        f"webhooks.{os.getpid()}@%h",
        "--loglevel",
        "info",
    ]
    celery.worker_main(argv + brokers.for_settings(get_settings()).worker_flags())


def aligner(loglevel: Annotated[str, typer.Option()] = "info") -> None:
    """Align finished audio to its text for the jobs that ask for word timestamps (their own
    queue, so no engine's environment needs speech recognition). Needs the `align` extra: the
    model is loaded before the first job."""
    # The `align` extra: installed only where aligners run.
    from voicefarm.audio import asr
    from voicefarm.dispatch.app import get_celery

    celery = get_celery()
    asr.model()
    argv = [
        "worker",
        "-Q",
        names.ALIGN_QUEUE,
        # One process, the model loaded above: alignments run one at a time; more aligners scale out.
        "-P",
        "solo",
        "-n",
        f"aligner.{os.getpid()}@%h",
        "--loglevel",
        loglevel,
    ]
    celery.worker_main(argv + brokers.for_settings(get_settings()).worker_flags())


def flower(
    port: Annotated[int, typer.Option()] = 5555,
    address: Annotated[str, typer.Option()] = "127.0.0.1",
) -> None:
    """Flower, Celery's dashboard of workers and tasks, on this farm's broker, behind basic auth."""
    settings = get_settings()
    if not settings.flower_basic_auth or ":" not in settings.flower_basic_auth:
        console.print("[red]set VOICEFARM_FLOWER_BASIC_AUTH=user:password: Flower shows every task's arguments[/red]")
        raise typer.Exit(1)
    from voicefarm.dispatch.app import get_celery

    celery = get_celery()

    celery.start(["flower", f"--port={port}", f"--address={address}", f"--basic-auth={settings.flower_basic_auth}"])


def reconcile(
    every: Annotated[float | None, typer.Option(help="Keep running, reconciling every SECONDS.")] = None,
    metrics_port: Annotated[int | None, metrics_port_option("reconcile")] = None,
) -> None:
    """Send again the jobs of workers that stopped beating, and jobs that wait in the database but
    whose broker message was lost. With --every, keep doing so however many passes fail (an
    outage of Redis or PostgreSQL: each is logged, and the next waits longer), also collect what
    retention no longer keeps, every VOICEFARM_GC_INTERVAL_SECONDS, and serve the counts of what
    it did, and when its last pass succeeded, at /metrics on --metrics-port."""
    settings = get_settings()
    if every is not None:
        serve_metrics(settings, metrics_port, "reconcile")
    # After the metrics are served: these import prometheus_client.
    from voicefarm.library.retention import Periodic
    from voicefarm.ops.reconcile import keep_reconciling
    from voicefarm.ops.reconcile import reconcile as run
    from voicefarm.telemetry import counters

    counters.initialise_reconciler(settings)
    if every is None:
        console.print(f"sent again {len(run(settings))} job(s)")
        return

    def say(line: str) -> None:
        console.print(line, markup=False, soft_wrap=True)  # an error's text may hold [brackets]

    collector = Periodic(settings, say)

    def one_pass() -> None:
        collector.poll()
        if resent := run(settings):
            say(f"sent again {len(resent)} job(s)")

    keep_reconciling(one_pass, every, threading.Event())  # never set: it runs until the process is stopped


def _dev_key(settings: Settings) -> str:
    from voicefarm.store import db
    from voicefarm.tenancy.auth import dev_key

    with db.session() as s:
        return dev_key(s, settings.data_dir)


def up() -> None:
    """Run the API and one worker per configured engine in the foreground. Ctrl-C, SIGTERM and
    SIGHUP stop everything it started: a warm shutdown first, then a kill after a grace period."""
    from voicefarm.ops.supervisor import Farm

    def interrupt(signum: int, _: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    # The children run in sessions of their own, so only this process hears a signal sent to it
    # (systemd, docker stop, a closed terminal); it must pass it on, or they outlive it. SIGINT
    # too: a shell that started us in the background had us inherit it ignored.
    for stop_signal in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(stop_signal, interrupt)
    settings = get_settings()
    migrate()
    console.print(f"API key for local development: [bold]{_dev_key(settings)}[/bold]")
    try:
        with Farm(settings) as farm:
            farm.wait_ready()
            console.print(f"farm up at {farm.url} (engines: {', '.join(settings.engines)}); Ctrl-C stops it")
            console.print(
                "metrics: " + ", ".join(f"{role} {url}" for role, url in farm.metrics.items()), soft_wrap=True
            )
            while True:
                farm.check_alive()
                time.sleep(1)
    except KeyboardInterrupt as stopped:
        console.print(f"stopped ({stopped})")


DEMO_PHRASES = [
    "Welcome to voicefarm, a text to speech farm.",
    "Every job goes through a queue to a worker.",
    "The audio is stored once and served from the cache.",
]


def demo(out: Annotated[Path, typer.Option(help="Where to write the audio.")] = Path("demo-output")) -> None:
    """Start a farm, synthesize a few phrases through the HTTP API, print what happened, stop."""
    from voicefarm.client import Client
    from voicefarm.ops.supervisor import Farm, free_port

    port = free_port()
    os.environ["VOICEFARM_API_PORT"] = str(port)
    get_settings.cache_clear()
    settings = get_settings()
    migrate()
    key = _dev_key(settings)
    console.print(f"local API key: {key}")
    out.mkdir(parents=True, exist_ok=True)
    with Farm(settings, log_dir=settings.data_dir / "logs") as farm:
        farm.wait_ready()
        console.print(f"farm up at {farm.url} (logs in {settings.data_dir / 'logs'})")
        with Client(farm.url, key) as client:
            submitted = [client.submit(text) for text in DEMO_PHRASES]
            for i, job in enumerate(submitted):
                job = client.wait(job, timeout=120)
                if job.status != "succeeded":
                    console.print(f"[red]job {job.id} failed: {job.error}[/red]")
                    raise typer.Exit(1)
                path = out / f"phrase-{i + 1}.{job.format}"
                path.write_bytes(client.download(job))
                console.print(
                    f"job {job.id}  engine {job.engine}  audio {job.duration:.2f} s  "
                    f"synthesis {job.synthesis_seconds:.3f} s  url {job.audio_url}  -> {path}",
                    soft_wrap=True,
                )
            again = client.submit(DEMO_PHRASES[0])
            console.print(
                f"again: {DEMO_PHRASES[0]!r} -> cache {again.cache}, status {again.status}, url {again.audio_url}",
                soft_wrap=True,
            )
    console.print("farm stopped")
