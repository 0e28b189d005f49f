"""Long form on real servers: one document spoken in segments by every Piper worker, joined into
one file by a chord, segments reused across edits, SSML and Markdown breaks, and the whole
document moving down its chain when a segment fails."""

from __future__ import annotations

import io
import os
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import jiwer
import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select

from tests.farm.conftest import LOGS, Embedded, _wait, more_workers, wait_final
from tests.farm.test_streaming import streamed
from tests.farm.test_timestamps import assert_every_word_once, timestamps
from voicefarm.dispatch.app import enqueue
from voicefarm.fleet.heartbeat import owner
from voicefarm.jobs.lifecycle import abandon
from voicefarm.jobs.segments import PARAGRAPH_PAUSE
from voicefarm.settings import get_settings
from voicefarm.store import db
from voicefarm.store.models import Attempt

# Natural sentences, distinct enough that the ASR round trip means something.
SENTENCES = [
    "The lighthouse keeper climbed the narrow stairs every evening before the sun went down.",
    "Her brother planted tomatoes, beans and sunflowers along the garden fence.",
    "A sudden storm rolled across the valley and the farmers hurried their cattle into the barn.",
    "The old library smelled of paper, dust and the polish on its oak shelves.",
    "Every morning the baker opened his shop at six and sold warm bread to the neighbours.",
    "The children built a raft from driftwood and floated it down the slow brown river.",
    "At the station a tired conductor checked the tickets of the last passengers.",
    "The museum keeps a collection of clocks that all strike noon at slightly different times.",
    "When the snow melted, the mountain path was covered with small yellow flowers.",
    "The fisherman mended his nets on the harbour wall while the gulls circled overhead.",
    "Our teacher read us a story about a fox who learned to count the stars.",
    "The market square filled with music as the band began to play after lunch.",
    "She wrote a long letter to her grandmother and posted it on the way to school.",
    "The engineers tested the new bridge by driving heavy trucks across it slowly.",
    "In the evening the family sat by the fire and listened to the rain on the roof.",
]


def paragraphs(count: int, first: int = 0) -> list[str]:
    """`count` paragraphs of five sentences each, each a different rotation of SENTENCES."""
    return [
        " ".join(SENTENCES[(first + p * 5 + i) % len(SENTENCES)] for i in range(5)) + f" This is paragraph {p + 1}."
        for p in range(count)
    ]


def segment_attempts(job_id: str) -> list[Attempt]:
    with db.session() as s:
        rows = s.scalars(select(Attempt).where(Attempt.job_id == job_id).order_by(Attempt.id)).all()
        s.expunge_all()
        return list(rows)


def audio_of(http: httpx.Client, job: dict) -> tuple[np.ndarray, int]:
    redirect = http.get(f"/v1/jobs/{job['id']}/audio")
    assert redirect.status_code == 307, redirect.text
    samples, rate = sf.read(io.BytesIO(httpx.get(redirect.headers["location"]).content), dtype="float32")
    return samples, rate


def silences(samples: np.ndarray, rate: int, shortest: float = 0.5) -> list[float]:
    """The lengths (s) of the stretches quieter than -50 dBFS lasting at least `shortest` s."""
    frame = rate // 100
    count = len(samples) // frame
    rms = np.sqrt(np.mean(samples[: count * frame].reshape(count, frame) ** 2, axis=1))
    quiet = np.concatenate([[False], rms < 10 ** (-50 / 20), [False]])
    edges = np.flatnonzero(np.diff(quiet.astype(int)))
    runs = (edges[1::2] - edges[::2]) / 100
    return [float(r) for r in runs if r >= shortest]


@pytest.fixture(scope="module")
def second_piper(farm) -> Iterator[None]:
    """A second Piper worker process beside the farm's: a document's segments spread over both."""
    with more_workers("piper", 1, 2):
        yield


def test_a_long_text_is_one_job_spoken_by_both_workers(http: httpx.Client, second_piper: None) -> None:
    text = "\n\n".join(paragraphs(6))
    assert len(text) > get_settings().segment_chars
    submitted = http.post("/v1/jobs", json={"text": text, "quality": "fast"})
    assert submitted.status_code == 202, submitted.text
    assert submitted.json()["segments"] == {"total": 6, "done": 0, "cached": 0, "attempts": 0}

    job = wait_final(http, submitted.json()["id"], timeout=240)
    assert job["status"] == "succeeded", job
    assert job["segments"] == {"total": 6, "done": 6, "cached": 0, "attempts": 6}
    assert job["audio_url"].endswith(f"{job['content_key']}.wav")
    assert [a["segment"] for a in job["attempts"]] == [None]  # the join; succeeded segments are summarised
    workers = {owner(a.worker) for a in segment_attempts(job["id"]) if a.segment is not None}
    assert len(workers) == 2, workers

    samples, rate = audio_of(http, job)
    assert abs(len(samples) / rate - job["duration"]) < 0.01
    # Five paragraph breaks, each a pause at least as long as the document asks for.
    assert len([s for s in silences(samples, rate) if s >= PARAGRAPH_PAUSE - 0.05]) >= 5


def test_an_edited_document_synthesizes_only_the_changed_segment(http: httpx.Client) -> None:
    original = paragraphs(5, first=2)
    first = wait_final(http, http.post("/v1/jobs", json={"text": "\n\n".join(original)}).json()["id"], timeout=180)
    assert first["status"] == "succeeded" and first["segments"]["cached"] == 0, first

    edited = [*original[:4], original[4].replace("paragraph 5", "the last paragraph")]
    r = http.post("/v1/jobs", json={"text": "\n\n".join(edited)})
    assert r.status_code == 202, r.text
    job = wait_final(http, r.json()["id"], timeout=120)
    assert job["status"] == "succeeded", job
    assert job["segments"] == {"total": 5, "done": 5, "cached": 4, "attempts": 1}
    assert job["content_key"] != first["content_key"]

    # Another document that shares a paragraph shares its audio.
    shared = wait_final(http, http.post("/v1/jobs", json={"text": f"<speak><p>{original[0]}</p></speak>"}).json()["id"])
    assert shared["segments"] == {"total": 1, "done": 1, "cached": 1, "attempts": 0}, shared


def test_a_document_streams_in_order_while_its_segments_are_spoken(http: httpx.Client) -> None:
    text = "\n\n".join(paragraphs(5, first=11))
    assert len(text) > get_settings().segment_chars
    job_id = http.post("/v1/jobs", json={"text": text, "format": "pcm", "timestamps": True}).json()["id"]
    data, first = streamed(http, job_id)
    job = wait_final(http, job_id, timeout=180)
    assert job["status"] == "succeeded" and job["segments"]["total"] == 5, job
    # Heard before the last segment was spoken, and as long as the file, pause for pause: only
    # the gain differs, since the file is normalised as a whole once it exists.
    assert first < datetime.fromisoformat(job["timings"]["finished"])
    live = np.frombuffer(data, dtype="<i2")
    assert len(live) / job["sample_rate"] == pytest.approx(job["duration"], abs=0.01)
    assert len([s for s in silences(live.astype(np.float32) / 32768, job["sample_rate"]) if s >= 0.7]) >= 4

    # The timestamps cover the whole document: every word of every segment, once, in order.
    body = timestamps(http, job_id, timeout=120)
    spoken = " ".join(" ".join(paragraphs(5, first=11)).split())
    assert_every_word_once(body, spoken, job["duration"])
    assert body["words"][-1]["end"] > job["duration"] - 1.0


def test_ssml_breaks_and_paragraphs_are_pauses(http: httpx.Client) -> None:
    ssml = (
        "<speak><p><s>The meeting starts at noon.</s><s>Please be on time.</s></p>"
        '<p>Bring your notes.<break time="2s"/>And a pen.</p></speak>'
    )
    job = wait_final(http, http.post("/v1/jobs", json={"text": ssml}).json()["id"])
    assert job["status"] == "succeeded" and job["segments"]["total"] == 3, job
    gaps = silences(*audio_of(http, job))
    assert any(PARAGRAPH_PAUSE - 0.05 <= gap < 1.5 for gap in gaps), gaps  # between the paragraphs
    assert any(2.0 <= gap < 2.6 for gap in gaps), gaps  # the break


def test_ssml_outside_the_subset_is_refused_by_name(http: httpx.Client) -> None:
    r = http.post("/v1/jobs", json={"text": '<speak>Hi <say-as interpret-as="date">2024</say-as></speak>'})
    assert r.status_code == 422 and "SSML element <say-as> is not supported" in r.json()["error"], r.text


def test_markdown_headings_and_blank_lines_are_paragraph_breaks(http: httpx.Client) -> None:
    body = paragraphs(5, first=7)
    text = f"# The farm at night\n{body[0]}\n\n## Morning\n" + "\n\n".join(body[1:])
    job = wait_final(http, http.post("/v1/jobs", json={"text": text}).json()["id"], timeout=120)
    assert job["status"] == "succeeded" and job["segments"]["total"] == 7, job
    samples, rate = audio_of(http, job)
    assert len([s for s in silences(samples, rate) if s >= PARAGRAPH_PAUSE - 0.05]) >= 6


@pytest.mark.fault_injection
def test_a_failing_segment_moves_the_whole_document_down_its_chain(http: httpx.Client) -> None:
    ssml = "<speak><p>First, the broken engine tries.</p><p>Then Piper speaks all of it.</p></speak>"
    job = wait_final(http, http.post("/v1/jobs", json={"text": ssml, "quality": "flaky"}).json()["id"])
    assert job["status"] == "succeeded" and job["engine"] == "piper", job
    attempts = segment_attempts(job["id"])
    failed = [a for a in attempts if a.outcome == "failed"]
    # Tried again on its engine before the document moved on: one segment failed twice.
    assert {a.engine for a in failed} == {"broken"} and max(
        sum(a.segment == f.segment for a in failed) for f in failed
    ) == 1 + get_settings().segment_retries
    assert any(a.rerouted_to == "piper" for a in failed)
    # One voice: every segment of the audio came from Piper.
    spoken = {a.segment: a.engine for a in attempts if a.outcome == "succeeded"}
    assert spoken == {0: "piper", 1: "piper", None: "piper"}
    assert [a["outcome"] for a in job["attempts"]][-1] == "succeeded"
    assert all(a["engine"] == "broken" and a["segment"] is not None for a in job["attempts"][:-1])


def test_a_long_document_is_as_intelligible_as_its_sentences_one_by_one(http: httpx.Client, transcribe) -> None:
    text = " ".join(paragraphs(5, first=4))
    job = wait_final(http, http.post("/v1/jobs", json={"text": text, "format": "flac"}).json()["id"], timeout=180)
    assert job["status"] == "succeeded" and job["segments"]["total"] >= 2, job
    buf = io.BytesIO()
    sf.write(buf, *audio_of(http, job), format="WAV")
    document_wer = wer(text, transcribe(buf.getvalue()))

    sentences = re.findall(r"[^.]+\.", text)
    jobs = [http.post("/v1/jobs", json={"text": sentence.strip()}).json() for sentence in sentences]
    heard = []
    for one in jobs:
        done = one if one["id"] is None else wait_final(http, one["id"])
        heard.append(transcribe(httpx.get(http.get(done["audio_url"]).headers["location"]).content))
    sentences_wer = wer(text, " ".join(heard))
    assert document_wer <= sentences_wer + 0.05, (document_wer, sentences_wer)


def wer(expected: str, heard: str) -> float:
    def words(text: str) -> str:
        return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())

    return float(jiwer.wer(words(expected), words(heard)))


def test_progress_shows_segments_while_it_runs(http: httpx.Client) -> None:
    text = "\n\n".join(paragraphs(5, first=9))
    job_id = http.post("/v1/jobs", json={"text": text, "speed": 1.1}).json()["id"]
    seen = set()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        job = http.get(f"/v1/jobs/{job_id}").json()
        seen.add(job["segments"]["done"])
        if job["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.05)
    assert job["status"] == "succeeded" and job["segments"]["done"] == 5
    assert len(seen) >= 3, seen  # it counted up, not from nothing to all at once


def test_the_embedded_farm_joins_a_document_too(embedded: Embedded, tmp_path: Path) -> None:
    """No Redis: the chord counts its segments through the result folder beside the filesystem
    broker. `voicefarm say` shows and waits for the segments."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEFARM_")}
    env |= {"VOICEFARM_URL": embedded.url, "VOICEFARM_API_KEY": embedded.key}
    ssml = "<speak><p>One document.</p><p>Spoken in two segments, then joined.</p></speak>"
    out = tmp_path / "doc.wav"
    done = subprocess.run(["voicefarm", "say", ssml, "-o", str(out)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    samples, rate = sf.read(out, dtype="float32")
    assert len(samples) / rate > 2 and any(gap >= PARAGRAPH_PAUSE - 0.05 for gap in silences(samples, rate))


@pytest.mark.fault_injection
def test_a_document_sent_again_after_its_worker_is_given_up_for_dead_settles_once(
    http: httpx.Client, slow_workers: list[subprocess.Popen[bytes]]
) -> None:
    """What the reconciler does when a worker stops beating in the middle of a segment, done now
    (abandon, then enqueue): the document goes out again on its next dispatch while the old
    dispatch's segments, still running, finish. Only the new dispatch's join settles it."""
    ssml = "<speak><p>One slow part.</p><p>Another slow part.</p><p>The last slow part.</p></speak>"
    job_id = http.post("/v1/jobs", json={"text": ssml, "quality": "sluggish"}).json()["id"]

    def running() -> Attempt | None:
        return next((a for a in segment_attempts(job_id) if a.outcome == "running"), None)

    deadline = time.monotonic() + 60
    while (first := running()) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first is not None, "no segment started"
    message = abandon(job_id, first.id, "test: its worker was given up for dead")
    assert message is not None and message.dispatch == 1 and message.document
    enqueue(message, get_settings())

    job = wait_final(http, job_id)
    assert job["status"] == "succeeded" and job["engine"] == "slow", job
    attempts = segment_attempts(job_id)
    assert [a.outcome for a in attempts if a.segment is None] == ["succeeded"]  # one join settled it
    assert [a.outcome for a in attempts if a.id == first.id] == ["lost"]
    assert job["segments"]["done"] == 3
    stale = f"document {job_id}: nothing to do for dispatch 0 on slow"  # the old chord's join

    def logged() -> bool:
        return any(stale in p.read_text(errors="replace") for p in LOGS.glob("worker-slow-*.log"))

    _wait("the old dispatch's join to find nothing to do", logged, timeout=60)
