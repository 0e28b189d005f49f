"""Streaming without servers: the crossfade that streams, the piece-by-piece encoder, and the
relay's rules over a real file feed (the embedded farm's)."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from voicefarm.audio.codec import encode
from voicefarm.audio.encoder import StreamEncoder
from voicefarm.engines.base import Audio, SynthesisRequest, Word, joined, stream
from voicefarm.engines.text import CROSSFADE_SECONDS, crossfaded
from voicefarm.errors import JobCanceled, JobFailed, NotReady, StreamBroken
from voicefarm.jobs.feeds import Entry, FileFeed
from voicefarm.jobs.relay import JobState, Said, Stored, follow
from voicefarm.settings import Settings

RATE = 22050


def sine(seconds: float, f: float = 220.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * f * np.arange(int(seconds * RATE)) / RATE)).astype(np.float32)


def test_crossfaded_pieces_hold_back_only_the_fade() -> None:
    pieces = [sine(0.5), sine(0.3, 330), sine(0.004), sine(0.2, 440)]  # one shorter than the fade
    out = list(crossfaded(iter(pieces), RATE))
    fade = int(CROSSFADE_SECONDS * RATE)
    assert len(out[0]) == len(pieces[0]) - fade  # the first piece goes on before the second exists
    whole = np.concatenate(out)
    assert len(whole) == sum(map(len, pieces)) - fade - len(pieces[2]) - fade
    assert np.abs(np.diff(whole)).max() < 0.2  # no step at a join


def test_an_engine_that_cannot_stream_is_one_piece() -> None:
    class Whole:
        name = "whole"

        def synthesize(self, request: SynthesisRequest) -> Audio:
            return Audio(sine(0.1), RATE)

    [piece] = stream(Whole(), SynthesisRequest("hi", "v", "en"))  # type: ignore[arg-type]
    assert len(piece.samples) == int(0.1 * RATE)
    with pytest.raises(ValueError, match="changed its sample rate"):
        joined([Audio(sine(0.1), RATE), Audio(sine(0.1), 24000)])


def test_joined_pieces_keep_their_words_where_each_piece_starts() -> None:
    first = Audio(sine(0.5), RATE, (Word("Hello", 0.1, 0.4),))
    second = Audio(sine(0.25), RATE, (Word("there", 0.0, 0.2),))
    assert joined([first, second]).words == (Word("Hello", 0.1, 0.4), Word("there", 0.5, 0.7))
    # One piece without word times: the engine cannot time the whole, so it times none of it.
    assert joined([first, Audio(sine(0.25), RATE)]).words is None


@pytest.mark.parametrize("fmt", ["pcm", "wav"])
def test_pcm_and_wav_streams_carry_the_stored_samples(fmt: str) -> None:
    pieces = [sine(0.4), 1.5 * sine(0.3, 330), sine(0.2, 440)]  # one clips, as the stored file's does
    encoder = StreamEncoder(fmt, RATE, RATE)
    data = b"".join([encoder.feed(p) for p in pieces] + [encoder.close()])
    stored, _ = encode(Audio(np.concatenate(pieces), RATE), fmt)
    header = 44 if fmt == "wav" else 0
    assert data[header:] == stored[header:]
    if fmt == "wav":
        samples, rate = sf.read(io.BytesIO(data))
        assert rate == RATE and len(samples) == sum(map(len, pieces))


@pytest.mark.parametrize(
    ("fmt", "codec", "rate"), [("mp3", "mp3float", 22050), ("opus", "opus", 24000), ("aac", "aac", 16000)]
)
def test_compressed_streams_come_out_piece_by_piece(fmt: str, codec: str, rate: int) -> None:
    encoder = StreamEncoder(fmt, RATE, rate)
    outs = [encoder.feed(sine(0.5)) for _ in range(4)]
    outs.append(encoder.close())
    assert all(outs[1:4])  # bytes after each half second, not only at the end
    with av.open(io.BytesIO(b"".join(outs))) as container:
        audio = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(audio))
        assert audio.codec_context.name == codec and abs(samples / audio.rate - 2.0) < 0.15  # AAC adds its priming


def test_a_format_that_cannot_stream_is_refused() -> None:
    with pytest.raises(ValueError, match="format 'flac' cannot be streamed"):
        StreamEncoder("flac", RATE, RATE)


@pytest.fixture
def feed(tmp_path: Path) -> FileFeed:
    return FileFeed(Settings(data_dir=tmp_path, filesystem_polling_interval=0.01))


def piece(attempt: int, engine: str = "piper", seconds: float = 0.1) -> Entry:
    return Entry(attempt, engine, "audio", Audio(sine(seconds), RATE))


def states(*sequence: JobState) -> Callable[[], Awaitable[JobState]]:
    """The job's state at each look, the last one from then on."""
    looks = iter(sequence)
    last = [sequence[0]]

    async def state() -> JobState:
        last[0] = next(looks, last[0])
        return last[0]

    return state


RUNNING = JobState("running", None, None, None)


def relayed(feed: FileFeed, state: Callable[[], Awaitable[JobState]], job: str = "j") -> list[Audio | Said | Stored]:
    async def run() -> list[Audio | Said | Stored]:
        return [item async for item in follow(feed, job, state, check=0.05)]

    return asyncio.run(run())


def test_a_failure_before_the_first_piece_is_passed_over(feed: FileFeed) -> None:
    feed.append("j", Entry(1, "broken", "failed", error="RuntimeError: down"))
    feed.append("j", piece(2))
    feed.append("j", piece(2))
    feed.append("j", Entry(2, "piper", "end"))
    out = relayed(feed, states(RUNNING))
    assert len(out) == 2 and all(isinstance(p, Audio) for p in out)


def test_a_failure_after_a_piece_breaks_the_stream(feed: FileFeed) -> None:
    feed.append("j", piece(1, "stutters"))
    feed.append("j", Entry(1, "stutters", "failed", error="RuntimeError: gone"))
    feed.append("j", piece(2))
    with pytest.raises(StreamBroken, match="job j: stutters failed after its audio began"):
        relayed(feed, states(RUNNING))


def test_a_cancel_ends_the_stream_of_the_job_it_names_and_no_other(feed: FileFeed) -> None:
    feed.append("leader", piece(1))
    feed.append("leader", Entry(0, "", "canceled", job="follower"))  # a follower of it was canceled
    feed.append("leader", piece(1))
    feed.append("leader", Entry(0, "", "canceled", job="leader"))
    feed.append("leader", piece(1))
    heard: list[Audio | Said | Stored] = []

    async def run() -> None:
        async for item in follow(feed, "leader", states(RUNNING), check=0.05):
            heard.append(item)

    with pytest.raises(JobCanceled, match="job leader was canceled"):
        asyncio.run(run())
    assert len(heard) == 2  # the pieces before its own cancel


def test_a_job_found_canceled_between_entries_ends_its_stream(feed: FileFeed) -> None:
    feed.append("j", piece(1))
    with pytest.raises(JobCanceled, match="job j was canceled"):
        relayed(feed, states(RUNNING, JobState("canceled", None, None, "canceled by its owner")))


def test_another_attempt_after_a_piece_breaks_the_stream(feed: FileFeed) -> None:
    feed.append("j", piece(1, "xtts"))  # its worker died without a word
    feed.append("j", piece(2, "xtts"))
    with pytest.raises(StreamBroken, match="attempt on xtts stopped after its audio began"):
        relayed(feed, states(RUNNING))


def test_a_queued_job_is_waited_for(feed: FileFeed) -> None:
    def worker() -> None:
        time.sleep(0.3)
        feed.append("j", piece(1))
        feed.append("j", Entry(1, "piper", "end"))

    thread = threading.Thread(target=worker)
    thread.start()
    out = relayed(feed, states(JobState("queued", None, None, None)))
    thread.join()
    assert len(out) == 1


def test_a_job_that_fails_or_was_answered_elsewhere_ends_the_relay(feed: FileFeed) -> None:
    with pytest.raises(JobFailed, match="job j failed: every engine failed"):
        relayed(feed, states(JobState("failed", None, None, "every engine failed")))
    assert relayed(feed, states(JobState("succeeded", None, "audio/k.wav", None))) == [Stored("audio/k.wav")]
    with pytest.raises(NotReady, match="its audio has since been deleted"):
        relayed(feed, states(JobState("succeeded", None, None, None)))


def test_a_follower_is_heard_through_its_leader(feed: FileFeed) -> None:
    feed.append("leader", piece(7))
    feed.append("leader", Entry(7, "piper", "end"))
    out = relayed(feed, states(JobState("queued", "leader", None, None)), job="follower")
    assert len(out) == 1 and isinstance(out[0], Audio)


def segment(position: int, speaker: int = 0, engine: str = "piper") -> Entry:
    return Entry(speaker, engine, "audio", segment=position, source=f"src-{position}", pause=0.2 * position)


def test_a_documents_segments_are_heard_in_order_whatever_order_they_finish_in(feed: FileFeed) -> None:
    for position in (2, 0, 3, 0, 1):  # the second 0: a dispatch sent again names a stored one again
        feed.append("doc", segment(position))
    feed.append("doc", Entry(0, "piper", "end"))
    out = relayed(feed, states(RUNNING), job="doc")
    assert out == [Said(f"src-{p}", 0.2 * p) for p in range(4)]


def test_a_document_another_engine_takes_over_starts_again_unless_it_was_heard(feed: FileFeed) -> None:
    feed.append("doc", segment(1, speaker=0, engine="xtts"))  # held: segment 0 never came from xtts
    feed.append("doc", segment(1, speaker=1))
    feed.append("doc", segment(0, speaker=1))
    feed.append("doc", Entry(1, "piper", "end"))
    assert relayed(feed, states(RUNNING), job="doc") == [Said("src-0", 0.0), Said("src-1", 0.2)]

    feed.append("heard", segment(0, speaker=0, engine="xtts"))
    feed.append("heard", segment(0, speaker=1))
    with pytest.raises(StreamBroken, match="attempt on xtts stopped after its audio began"):
        relayed(feed, states(RUNNING), job="heard")


def test_a_document_that_ends_with_a_segment_missing_breaks_the_stream(feed: FileFeed) -> None:
    feed.append("doc", segment(0))
    feed.append("doc", segment(2))
    feed.append("doc", Entry(0, "piper", "end"))
    with pytest.raises(StreamBroken, match="segment 1 of the document never came"):
        relayed(feed, states(RUNNING), job="doc")
