"""The `voicefarm` command line."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from voicefarm import broker
from voicefarm.settings import Settings, get_settings

app = typer.Typer(help="voicefarm: a distributed text-to-speech farm.", no_args_is_help=True, add_completion=False)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
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
        "voicefarm.api.app:app",
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        log_level="info",
    )


@app.command()
def worker(
    engine: Annotated[str, typer.Option(help="The engine whose queue (tts.ENGINE) this worker consumes.")],
    gpu: Annotated[int | None, typer.Option(help="Pin the worker to this GPU index.")] = None,
    concurrency: Annotated[int, typer.Option(help="Worker processes, each with its own model (CPU engines).")] = 1,
    loglevel: Annotated[str, typer.Option()] = "info",
) -> None:
    """Run a Celery worker for one engine, once the engine has passed its self-test; each
    process loads the model before its first job. Exits 1 when the self-test fails."""
    from voicefarm import engines, selftest

    settings = get_settings()
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

    error = selftest.run(engine)
    selftest.record(engine, None if error is None else f"failed self-test: {error}", caps.to_json())
    if error is not None:
        # One plain line on stderr: what an orchestrator's log of the crash loop shows.
        typer.echo(f"engine {engine} failed its self-test; this worker takes no jobs: {error}", err=True)
        raise typer.Exit(1)
    from voicefarm.worker import ENGINE_ENV

    os.environ[ENGINE_ENV] = engine
    from voicefarm.heartbeat import Heartbeat
    from voicefarm.queue import app as celery

    celery.steps["worker"].add(Heartbeat)

    argv = [
        "worker",
        "-Q",
        broker.queue_name(engine),
        "-P",
        "prefork",
        "-c",
        str(concurrency),
        "--prefetch-multiplier",
        "1",
        "-E",
        "-n",
        f"{engine}.{os.getpid()}@%h",
        "--loglevel",
        loglevel,
    ]
    celery.worker_main(argv + broker.for_settings(settings).worker_flags())


@app.command()
def webhooks(concurrency: Annotated[int, typer.Option(help="Callbacks delivered at once.")] = 8) -> None:
    """Deliver job and batch callbacks (their own queue: a slow receiver never holds a synthesis)."""
    from voicefarm.queue import app as celery
    from voicefarm.webhooks import QUEUE

    argv = [
        "worker",
        "-Q",
        QUEUE,
        "-P",
        "threads",
        "-c",
        str(concurrency),
        "-n",
        f"webhooks.{os.getpid()}@%h",
        "--loglevel",
        "info",
    ]
    celery.worker_main(argv + broker.for_settings(get_settings()).worker_flags())


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
    from voicefarm.queue import app as celery

    celery.start(["flower", f"--port={port}", f"--address={address}", f"--basic-auth={settings.flower_basic_auth}"])


@app.command()
def reconcile(
    every: Annotated[float | None, typer.Option(help="Keep running, reconciling every SECONDS.")] = None,
) -> None:
    """Re-enqueue jobs that wait in the database but whose broker message was lost."""
    from voicefarm.reconcile import reconcile as run

    settings = get_settings()
    while True:
        try:
            resent = run(settings)
            if resent or every is None:
                console.print(f"re-enqueued {len(resent)} job(s)")
        except Exception as e:  # a broker or database outage: try again next round
            if every is None:
                raise
            console.print(f"[yellow]reconcile failed, retrying in {every} s: {e}[/yellow]")
        if every is None:
            return
        time.sleep(every)


def _dev_key(settings: Settings) -> str:
    from voicefarm import db
    from voicefarm.auth import dev_key

    with db.session() as s:
        return dev_key(s, settings.data_dir)


@app.command()
def up() -> None:
    """Run the API and one worker per configured engine in the foreground. Ctrl-C, SIGTERM and
    SIGHUP stop everything it started: a warm shutdown first, then a kill after a grace period."""
    from voicefarm.farm import Farm

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
) -> None:
    """Synthesize TEXT through the farm at VOICEFARM_URL and write it to a file."""
    from voicefarm.client import Client, FarmError

    settings = get_settings()
    url = os.environ.get("VOICEFARM_URL", f"http://{settings.api_host}:{settings.api_port}")
    fmt = format or output.suffix.lstrip(".") or "wav"
    with Client(url, _api_key(settings)) as client:
        try:
            job = client.wait(
                client.submit(text, voice=voice, quality=quality, language=language, speed=speed, format=fmt)
            )
            output.write_bytes(client.download(job))
        except FarmError as e:
            console.print(f"[red]{e}[/red]")
            raise typer.Exit(1) from None
    console.print(f"{output}: {job.duration:.2f} s of audio from {job.engine} (job {job.id or 'cache hit'})")


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
                rate = done / max(time.monotonic() - started, 1e-6)
                progress.update(task, completed=done, rate=f"{rate:.1f} items/s")
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
    from voicefarm import db
    from voicefarm.auth import create_key

    with db.session() as s:
        print(create_key(s, tenant, name=name, admin=admin))


DEMO_PHRASES = [
    "Welcome to voicefarm, a text to speech farm.",
    "Every job goes through a queue to a worker.",
    "The audio is stored once and served from the cache.",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@app.command()
def demo(out: Annotated[Path, typer.Option(help="Where to write the audio.")] = Path("demo-output")) -> None:
    """Start a farm, synthesize a few phrases through the HTTP API, print what happened, stop."""
    from voicefarm.client import Client
    from voicefarm.farm import Farm

    port = _free_port()
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
