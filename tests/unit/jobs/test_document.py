"""A document's bookkeeping (voicefarm.jobs.document) on an embedded farm: fan-out, its segments'
attempts, the join, and a failing segment moving the whole document down its chain."""

from __future__ import annotations

import pytest

from tests.unit.embedded import attempts, audio, breaker_row, job, live, new_job
from voicefarm.dispatch.app import Message
from voicefarm.dispatch.priorities import INTERACTIVE
from voicefarm.jobs.document import (
    FanOut,
    Join,
    Ready,
    begin_join,
    begin_segment,
    fail_segment,
    fan_out,
    finish_segment,
    segment_key,
)
from voicefarm.jobs.lifecycle import Run, finish
from voicefarm.library import renditions
from voicefarm.library.cache import CachedAudio
from voicefarm.store import db
from voicefarm.store.models import Job, Link, Rendition

pytestmark = pytest.mark.usefixtures("farm")

# Five segments at 100 characters (the farm fixture's segment_chars); the last paragraph says
# the first one again, so segments 3 and 4 are the speech of 0 and 1.
OPENING = "The first paragraph opens with a sentence long enough to fill most of one segment.  It goes on for a while."
DOCUMENT = f"{OPENING}\n\nA second paragraph says something else entirely, and says it at length too.\n\n{OPENING}"


def segment_audio(job_id: str, position: int, engine: str) -> CachedAudio:
    with db.session() as s:
        doc = s.get(Job, job_id)
        assert doc is not None
        key = segment_key(doc.segments[position], engine)
    return CachedAudio(key, f"audio/{key}.flac", f"file:///objects/audio/{key}.flac", engine, "flac", 2.0, 22050)


def store_segment(job_id: str, position: int, engine: str) -> str:
    """Another document (or a job in FLAC) already stored this segment's speech: its key."""
    stored = segment_audio(job_id, position, engine)
    with db.session() as s:
        doc = s.get(Job, job_id)
        assert doc is not None
        renditions.record(s, stored, doc.segments[position].sources[engine], doc.voice)
    return stored.content_key


def fanned(job_id: str, engine: str, dispatch: int) -> FanOut:
    fan = fan_out(job_id, engine, dispatch)
    assert fan is not None, f"document {job_id} fans out on {engine}, dispatch {dispatch}"
    return fan


def segment_run(job_id: str, engine: str, dispatch: int, position: int) -> Run:
    run = begin_segment(job_id, engine, "w/1", dispatch, position)
    assert isinstance(run, Run), f"segment {position} begins"
    return run


def spoken(job_id: str, engine: str, dispatch: int, position: int, seconds: float = 1.0) -> Ready | None:
    run = segment_run(job_id, engine, dispatch, position)
    return finish_segment(job_id, dispatch, run.attempt_id, run.source, audio(run, engine), seconds)


def done(job_id: str) -> list[tuple[bool, bool]]:
    return [(seg.done, seg.cached) for seg in job(job_id).segments]


def document() -> Job:
    doc = new_job(DOCUMENT)
    assert doc.document and len(job(doc.id).segments) == 5
    return doc


def test_fan_out_marks_stored_segments_done_and_sends_each_other_speech_once() -> None:
    live("xtts", "piper")
    doc = document()
    reused = store_segment(doc.id, 2, "xtts")

    assert fan_out(doc.id, "xtts", 1) is None  # not the current dispatch
    assert fan_out(doc.id, "piper", 0) is None  # not the engine it is on
    fan = fanned(doc.id, "xtts", 0)

    assert fan.todo == [0, 1]  # 3 and 4 say what 0 and 1 say; 2 is stored
    assert fan.reused == [reused] and fan.priority == INTERACTIVE
    source = job(doc.id).segments[2].sources["xtts"]
    assert fan.ready == Ready(speaker=0, segments=[(2, source, 0.75)])
    now = job(doc.id)
    assert now.status == "running" and now.started_at is not None and now.attempts == []
    assert done(doc.id) == [(False, False), (False, False), (True, True), (False, False), (False, False)]


def test_segments_finish_and_the_join_begins_once_every_segment_is_stored() -> None:
    live("xtts", "piper")
    doc = document()
    fanned(doc.id, "xtts", 0)

    first = segment_run(doc.id, "xtts", 0, 0)
    assert (first.key, first.format, first.rate) == (segment_key(job(doc.id).segments[0], "xtts"), "flac", None)
    assert first.request.text == job(doc.id).segments[0].text
    ready = finish_segment(doc.id, 0, first.attempt_id, first.source, audio(first, "xtts"), 1.5)
    assert ready is not None and [position for position, _, _ in ready.segments] == [0, 3]  # one speech, twice
    with db.session() as s:
        assert s.get(Rendition, first.key) is not None
    assert [seg.synthesis_seconds for seg in job(doc.id).segments] == [1.5, None, None, None, None]
    spoken(doc.id, "xtts", 0, 1, seconds=0.5)
    spoken(doc.id, "xtts", 0, 2, seconds=1.0)
    assert done(doc.id) == [(True, False)] * 5

    join = begin_join(doc.id, "xtts", "w/2", 0)
    assert isinstance(join, Join)
    segments = job(doc.id).segments
    assert join.parts == [(seg.sources["xtts"], seg.pause) for seg in segments]
    assert [pause for _, pause in join.parts] == [0.2, 0.75, 0.75, 0.2, 0.0]
    assert (join.key, join.format, join.seconds, join.speaker) == (job(doc.id).content_key, "wav", 3.0, 0)
    joined = CachedAudio(join.key, f"audio/{join.key}.wav", "file:///x", "xtts", "wav", 9.0, 22050)
    assert finish(doc.id, join.attempt_id, audio=joined, seconds=join.seconds)

    finished = job(doc.id)
    assert (finished.status, finished.object_key, finished.synthesis_seconds) == ("succeeded", joined.object_key, 3.0)
    assert [(a.segment, a.outcome) for a in finished.attempts] == [
        (0, "succeeded"),
        (1, "succeeded"),
        (2, "succeeded"),
        (None, "succeeded"),  # the join
    ]


def test_a_join_with_a_segment_missing_sends_the_document_again_and_repeats_no_stored_segment() -> None:
    live("xtts", "piper")
    doc = document()
    fanned(doc.id, "xtts", 0)
    spoken(doc.id, "xtts", 0, 0)
    spoken(doc.id, "xtts", 0, 2)

    again = begin_join(doc.id, "xtts", "w/2", 0)  # counted in the chord by a duplicate delivery
    assert again == Message(doc.id, "xtts", 1, INTERACTIVE, document=True)
    assert job(doc.id).dispatch == 1 and [a.segment for a in job(doc.id).attempts] == [0, 2]  # no join attempt
    assert begin_segment(doc.id, "xtts", "w/1", 0, 1) is None  # the old dispatch's segment is stale
    assert begin_join(doc.id, "xtts", "w/2", 0) is None

    fan = fanned(doc.id, "xtts", 1)
    assert fan.todo == [1] and [position for position, _, _ in fan.ready.segments] == [0, 2, 3]
    spoken(doc.id, "xtts", 1, 1)
    assert isinstance(begin_join(doc.id, "xtts", "w/2", 1), Join)


def test_a_segment_stored_meanwhile_is_ready_without_an_attempt() -> None:
    live("xtts")
    doc = document()
    fanned(doc.id, "xtts", 0)
    store_segment(doc.id, 1, "xtts")  # another document said it first

    ready = begin_segment(doc.id, "xtts", "w/1", 0, 1)
    assert isinstance(ready, Ready) and [position for position, _, _ in ready.segments] == [1, 4]
    assert attempts(doc.id) == [] and done(doc.id)[1] == done(doc.id)[4] == (True, True)


def test_a_failing_segment_is_tried_again_then_moves_the_whole_document_down_its_chain() -> None:
    live("xtts", "piper")
    doc = document()
    chain = [Link(**entry) for entry in doc.chain]
    fanned(doc.id, "xtts", 0)
    late = segment_run(doc.id, "xtts", 0, 1)  # runs on while segment 0 fails

    first = segment_run(doc.id, "xtts", 0, 0)
    assert fail_segment(doc.id, 0, first.attempt_id, "RuntimeError: boom", last=False) is None
    assert job(doc.id).engine == "xtts" and breaker_row("xtts").failures == 1  # type: ignore[union-attr]
    retry = segment_run(doc.id, "xtts", 0, 0)
    moved = fail_segment(doc.id, 0, retry.attempt_id, "RuntimeError: boom", last=True)

    assert moved == Message(doc.id, "piper", 1, INTERACTIVE, document=True)
    now = job(doc.id)
    assert (now.status, now.engine, now.content_key, now.dispatch) == ("queued", "piper", chain[1].key, 1)
    assert [(a.segment, a.outcome, a.error, a.rerouted_to) for a in now.attempts] == [
        (1, "running", None, None),
        (0, "failed", "xtts: RuntimeError: boom", None),
        (0, "failed", "xtts: segment 0: RuntimeError: boom", "piper"),
    ]
    assert breaker_row("xtts").failures == 2  # type: ignore[union-attr]

    # The segment that ran on keeps its audio, for whoever says it next, but the document has
    # moved on: it is never spoken in two voices.
    assert finish_segment(doc.id, 0, late.attempt_id, late.source, audio(late, "xtts"), 1.0) is None
    with db.session() as s:
        assert s.get(Rendition, late.key) is not None
    assert begin_join(doc.id, "xtts", "w/2", 0) is None

    fan = fanned(doc.id, "piper", 1)
    assert fan.todo == [0, 1, 2] and fan.ready.segments == [] and fan.ready.speaker == 1
    assert done(doc.id) == [(False, False)] * 5


def test_a_failing_segment_at_the_end_of_the_chain_fails_the_document() -> None:
    live("xtts")
    doc = document()
    fanned(doc.id, "xtts", 0)
    run = segment_run(doc.id, "xtts", 0, 2)
    assert fail_segment(doc.id, 0, run.attempt_id, "RuntimeError: boom", last=True) is None
    failed = job(doc.id)
    assert failed.status == "failed" and failed.error == "every engine failed: xtts: segment 2: RuntimeError: boom"
    assert begin_segment(doc.id, "xtts", "w/1", 0, 0) is None
