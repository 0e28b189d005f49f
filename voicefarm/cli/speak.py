"""The SDK's commands: they reach a running farm over HTTP only (VOICEFARM_URL, with
VOICEFARM_API_KEY or the local development key), never its database or broker."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from voicefarm.cli.output import console
from voicefarm.settings import Settings, get_settings

if TYPE_CHECKING:
    from voicefarm.client import Client
    from voicefarm.schemas import JobOut


def _api_key(settings: Settings) -> str:
    key = os.environ.get("VOICEFARM_API_KEY")
    if key:
        return key
    path = settings.data_dir / "dev-api-key"
    if path.is_file():
        return path.read_text().strip()
    raise typer.BadParameter("set VOICEFARM_API_KEY (or run `voicefarm up` once for a local key)")


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


def cancel(
    id: Annotated[str, typer.Argument(help="A job's id, or a batch's with --batch.")],
    batch: Annotated[bool, typer.Option("--batch", help="Cancel every unfinished job of batch ID.")] = False,
) -> None:
    """Cancel a job (or a batch's unfinished jobs): queued, it never runs; running, it stops at
    its next piece of audio. A job that had already ended keeps its outcome, and says so."""
    from voicefarm.client import Client, FarmError

    settings = get_settings()
    url = os.environ.get("VOICEFARM_URL", settings.base_url.rstrip("/"))
    with Client(url, _api_key(settings)) as client:
        try:
            if batch:
                counts = client.cancel_batch(id).counts
                console.print(
                    f"batch {id}: {counts.canceled} canceled, {counts.succeeded} succeeded, {counts.failed} failed"
                )
                return
            job = client.cancel(id)
        except FarmError as e:
            console.print(f"[red]{e}[/red]")
            raise typer.Exit(1) from None
    console.print(f"job {id}: {job.status}")
    if job.status != "canceled":
        raise typer.Exit(2)  # it had ended before the cancel came


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
                done = batch.counts.succeeded + batch.counts.failed + batch.counts.canceled
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
