"""The `voicefarm` command line."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from voicefarm.dispatch import brokers, names
from voicefarm.dispatch.names import engine_queue
from voicefarm.settings import Settings, get_settings

if TYPE_CHECKING:
    from voicefarm.client import Client
    from voicefarm.schemas import JobOut

app = typer.Typer(help="voicefarm: a distributed text-to-speech farm.", no_args_is_help=True, add_completion=False)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
tenants_app = typer.Typer(help="Tenants' admission limits and cache scope.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
console = Console()
ROOT = Path(__file__).resolve().parent.parent


@app.command()
def migrate() -> None:
    """Apply the database migrations (alembic upgrade head)."""
    from alembic.config import Config

    from alembic import command

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")
    console.print(f"database at head: {settings.database_url.split('@')[-1]}")


@app.command()
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


def _serve_metrics(settings: Settings, port: int | None) -> None:
    """Serve this process's counts, and its pool children's, before anything counts."""
    from voicefarm.telemetry import exporter

    port = settings.metrics_port if port is None else port
    try:
        bound = exporter.serve(settings.api_host, port)
    except OSError as e:
        console.print(
            f"[red]cannot serve metrics on {settings.api_host}:{port}: {e}[/red]; give each worker "
            "on a host its own --metrics-port (VOICEFARM_METRICS_PORT), or 0 for any free port"
        )
        raise typer.Exit(1) from None
    console.print(f"metrics at http://{settings.api_host}:{bound}/metrics")


MetricsPort = Annotated[
    int | None, typer.Option(help="Serve this process's metrics on this port (VOICEFARM_METRICS_PORT; 0: any).")
]


@app.command()
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
    metrics_port: MetricsPort = None,
) -> None:
    """Run a Celery worker for one engine, once the engine has passed its self-test; each
    process loads the model before its first job. Exits 1 when the self-test fails. Its main
    process serves the counts of the worker's jobs at /metrics on --metrics-port. A pipelined
    worker keeps its engine busy while its jobs are stored and recorded (voicefarm.worker.slots)."""
    settings = get_settings()
    # First: the port is taken before a model loads for minutes, and the counters' storage is
    # chosen before anything imports the Prometheus client.
    _serve_metrics(settings, metrics_port)
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
    from voicefarm.worker.run import ENGINE_ENV

    os.environ[ENGINE_ENV] = engine
    processes = concurrency
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
        "prefork",
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


@app.command()
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


@app.command()
def aligner(loglevel: Annotated[str, typer.Option()] = "info") -> None:
    """Align finished audio to its text for the jobs that ask for word timestamps (their own
    queue, so no engine's environment needs speech recognition). Needs the `align` extra: the
    model is loaded before the first job."""
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


@app.command()
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


@app.command()
def reconcile(
    every: Annotated[float | None, typer.Option(help="Keep running, reconciling every SECONDS.")] = None,
    metrics_port: MetricsPort = None,
) -> None:
    """Send again the jobs of workers that stopped beating, and jobs that wait in the database but
    whose broker message was lost. With --every, also collect what retention no longer keeps,
    every VOICEFARM_GC_INTERVAL_SECONDS, and serve the counts of what it did at /metrics on
    --metrics-port."""
    settings = get_settings()
    if every is not None:
        _serve_metrics(settings, metrics_port)
    from voicefarm.library.retention import Periodic
    from voicefarm.ops.reconcile import reconcile as run
    from voicefarm.telemetry import counters

    counters.initialise_reconciler(settings)

    def say(line: str) -> None:
        console.print(line, markup=False, soft_wrap=True)  # an error's text may hold [brackets]

    collector = Periodic(settings, say) if every is not None else None
    while True:
        if collector is not None:
            collector.poll()
        try:
            resent = run(settings)
            if resent or every is None:
                console.print(f"sent again {len(resent)} job(s)")
        except Exception as e:  # a broker or database outage: try again next round
            if every is None:
                raise
            console.print(f"[yellow]reconcile failed, retrying in {every} s: {e}[/yellow]")
        if every is None:
            return
        time.sleep(every)


@app.command()
def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would be deleted; delete nothing.")] = False,
) -> None:
    """Delete what retention no longer keeps: finished jobs and their attempts, done batches
    (VOICEFARM_JOB_RETENTION_DAYS), unused audio (VOICEFARM_AUDIO_RETENTION_DAYS), objects no
    record accounts for, old tombstones. The reconciler also runs this on its own schedule."""
    from rich.table import Table

    from voicefarm.library.retention import collect

    report = collect(get_settings(), dry_run=dry_run)
    table = Table(title="would delete (dry run)" if dry_run else "deleted")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("bytes", justify="right")
    for what, count, size in report.rows():
        table.add_row(what, str(count), "" if size is None else f"{size:,}")
    console.print(table)
    if not dry_run:
        console.print(f"uses of audio folded in from Redis: {report.uses}")


def _dev_key(settings: Settings) -> str:
    from voicefarm.store import db
    from voicefarm.tenancy.auth import dev_key

    with db.session() as s:
        return dev_key(s, settings.data_dir)


@app.command()
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


def _api_key(settings: Settings) -> str:
    key = os.environ.get("VOICEFARM_API_KEY")
    if key:
        return key
    path = settings.data_dir / "dev-api-key"
    if path.is_file():
        return path.read_text().strip()
    raise typer.BadParameter("set VOICEFARM_API_KEY (or run `voicefarm up` once for a local key)")


@app.command()
def say(
    text: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the audio.")] = Path("out.wav"),
    voice: Annotated[str | None, typer.Option()] = None,
    quality: Annotated[str | None, typer.Option()] = None,
    language: Annotated[str | None, typer.Option()] = None,
    speed: Annotated[float, typer.Option()] = 1.0,
    format: Annotated[str | None, typer.Option(help="Defaults to the output file's extension.")] = None,
    stream: Annotated[
        bool, typer.Option("--stream", help="Write the audio as it arrives (pcm, wav, mp3, opus, aac).")
    ] = False,
    captions: Annotated[
        Path | None, typer.Option(help="Also write captions timed word by word: .vtt (WebVTT) or .srt (SubRip).")
    ] = None,
) -> None:
    """Synthesize TEXT through the farm at VOICEFARM_URL and write it to a file."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from voicefarm.client import Client, FarmError

    if captions is not None and captions.suffix not in (".vtt", ".srt"):
        raise typer.BadParameter(f"{captions}: name a .vtt or .srt file", param_hint="--captions")
    settings = get_settings()
    url = os.environ.get("VOICEFARM_URL", f"http://{settings.api_host}:{settings.api_port}")
    fmt = format or output.suffix.lstrip(".") or "wav"
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[cached]}"))
    with Client(url, _api_key(settings)) as client, Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("segments", visible=False, cached="")

        def show(job: JobOut) -> None:
            # A long text is spoken in segments: show how many are ready.
            if job.segments is not None:
                cached = f"{job.segments.cached} from cache" if job.segments.cached else ""
                progress.update(bar, visible=True, total=job.segments.total, completed=job.segments.done, cached=cached)

        try:
            started = time.monotonic()
            job = client.submit(
                text,
                voice=voice,
                quality=quality,
                language=language,
                speed=speed,
                format=fmt,
                timestamps=captions is not None,
            )
            if stream:
                _say_streaming(client, job, output, started)
            else:
                job = client.wait(job, progress=show)
                output.write_bytes(client.download(job))
                console.print(
                    f"{output}: {job.duration:.2f} s of audio from {job.engine} (job {job.id or 'cache hit'})"
                )
            if captions is not None:
                captions.write_text(client.captions(job, captions.suffix.lstrip(".")))
                console.print(f"{captions}: captions timed word by word")
        except FarmError as e:
            console.print(f"[red]{e}[/red]")
            raise typer.Exit(1) from None


def _say_streaming(client: Client, job: JobOut, output: Path, started: float) -> None:
    first: float | None = None
    size = 0
    with output.open("wb") as f:
        for chunk in client.stream_job(job):
            if first is None:
                first = time.monotonic() - started
                console.print(f"first audio after {first * 1000:.0f} ms")
            f.write(chunk)
            f.flush()  # a player reading the file hears it as it comes
            size += len(chunk)
    console.print(f"{output}: {size:,} bytes in {time.monotonic() - started:.2f} s, streamed as they came")


@app.command()
def pregen(
    phrases: Annotated[Path, typer.Argument(help="A text file: one phrase a line (blank lines skipped).")],
    voice: Annotated[list[str], typer.Option(help="A voice id; repeat for several.")] = [],  # noqa: B006
    quality: Annotated[str | None, typer.Option()] = None,
    format: Annotated[str, typer.Option()] = "wav",
    manifest: Annotated[Path | None, typer.Option(help="Write text → URL as .csv or .json.")] = None,
) -> None:
    """Pre-generate phrases × voices as one batch, with a live progress bar. Run again after an
    interruption: finished items come back from the cache at once, unfinished ones join the
    synthesis already running."""
    import csv
    import json

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from voicefarm.client import Client, FarmError

    texts = [line.strip() for line in phrases.read_text().splitlines() if line.strip()]
    settings = get_settings()
    url = os.environ.get("VOICEFARM_URL", settings.base_url.rstrip("/"))
    with Client(url, _api_key(settings)) as client:
        try:
            batch = client.create_batch(phrases=texts, voices=voice or None, quality=quality, format=format)
        except FarmError as e:
            console.print(f"[red]{e}[/red]")
            raise typer.Exit(1) from None
        columns = (
            TextColumn("batch {task.fields[batch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
        )
        started = time.monotonic()
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("pregen", total=batch.total, batch=batch.id, rate="")
            while True:
                done = batch.counts.succeeded + batch.counts.failed
                rate = f"{done / max(time.monotonic() - started, 1e-6):.1f} items/s"
                if batch.segments is not None:  # long texts: how far their segments are
                    rate += f", segments {batch.segments.done}/{batch.segments.total}"
                progress.update(task, completed=done, rate=rate)
                if batch.status == "done":
                    break
                time.sleep(0.5)
                batch = client.get_batch(batch.id)
    for failure in batch.failed:
        console.print(f"[red]item {failure.index} ({failure.text!r}, {failure.voice}): {failure.error}[/red]")
    rows = [{"text": i.text, "voice": i.voice, "format": i.format, "url": i.audio_url} for i in batch.manifest]
    if manifest is not None:
        if manifest.suffix == ".json":
            manifest.write_text(json.dumps(rows, indent=2))
        else:
            with manifest.open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=["text", "voice", "format", "url"])
                writer.writeheader()
                writer.writerows(rows)
    console.print(
        f"batch {batch.id}: {batch.counts.succeeded} succeeded, {batch.counts.failed} failed"
        + (f"; manifest {manifest}" if manifest else "")
    )
    if batch.counts.failed:
        raise typer.Exit(2)


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="Tenant id; created if new.")],
    admin: Annotated[bool, typer.Option(help="May use the admin endpoints.")] = False,
    name: Annotated[str, typer.Option()] = "",
) -> None:
    """Create an API key for a tenant and print it (it is not shown again)."""
    from voicefarm.store import db
    from voicefarm.tenancy.auth import create_key

    with db.session() as s:
        print(create_key(s, tenant, name=name, admin=admin))


def _limit(value: str | None, option: str) -> dict[str, int | str | None]:
    """An option's change: none when not given, None to go back to the farm's setting."""
    if value is None:
        return {}
    name = option.removeprefix("--").replace("-", "_")
    if value == "default":
        return {name: None}
    if not value.isdigit() or int(value) < 1:
        raise typer.BadParameter(f"{value!r}: give a whole number of at least 1, or 'default'", param_hint=option)
    return {name: int(value)}


LIMIT_HELP = "N, or 'default' for the farm's setting"


@tenants_app.command("set")
def tenants_set(
    tenant: str,
    max_active_jobs: Annotated[str | None, typer.Option(help=f"Queued plus running jobs: {LIMIT_HELP}.")] = None,
    submissions_per_minute: Annotated[
        str | None, typer.Option(help=f"Submissions a minute, each batch item one: {LIMIT_HELP}.")
    ] = None,
    chars_per_day: Annotated[str | None, typer.Option(help=f"Characters a UTC day: {LIMIT_HELP}.")] = None,
    cache: Annotated[
        str | None, typer.Option(help="shared, private (the tenant's own cache), or 'default' for the farm's.")
    ] = None,
) -> None:
    """Override a tenant's admission limits or cache scope; API processes apply a change within
    10 s. A private cache starts empty: the tenant's earlier audio is not in it."""
    from voicefarm.errors import VoicefarmError
    from voicefarm.store import db
    from voicefarm.tenancy import admission

    changes = {
        **_limit(max_active_jobs, "--max-active-jobs"),
        **_limit(submissions_per_minute, "--submissions-per-minute"),
        **_limit(chars_per_day, "--chars-per-day"),
    }
    if cache is not None:
        changes["cache_scope"] = None if cache == "default" else cache
    try:
        with db.session() as s:
            admission.override(s, tenant, changes)
    except VoicefarmError as e:
        console.print(f"[red]{e.message}[/red]")
        raise typer.Exit(1) from None
    tenants_show(tenant)


@tenants_app.command("show")
def tenants_show(tenant: str) -> None:
    """A tenant's limits and cache scope, each its own or the farm's, and its active jobs now."""
    from voicefarm.errors import NotFound
    from voicefarm.store import db
    from voicefarm.store.models import Tenant
    from voicefarm.tenancy import admission

    settings = get_settings()
    with db.session() as s:
        row = s.get(Tenant, tenant)
        if row is None:
            console.print(f"[red]{NotFound(f'no tenant {tenant!r}').message}[/red]")
            raise typer.Exit(1)
        policy = admission.policy(s, tenant, settings)
        active = admission.active_jobs(s, tenant, policy.max_active_jobs)
    typer.echo(f"tenant {tenant}")
    for name in (*admission.LIMITS, "cache_scope"):
        own = getattr(row, name) is not None
        source = "set for this tenant" if own else f"farm default, VOICEFARM_{name.upper()}"
        typer.echo(f"  {name.replace('_', ' '):<24}{getattr(policy, name)!s:<14}({source})")
    typer.echo(f"  {'active jobs now':<24}{active}")


DEMO_PHRASES = [
    "Welcome to voicefarm, a text to speech farm.",
    "Every job goes through a queue to a worker.",
    "The audio is stored once and served from the cache.",
]


@app.command()
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


if __name__ == "__main__":
    app()
