"""Long form: one document, many workers, one file, with Celery's canvas.

A document's message (`voicefarm.document`, on its engine's queue like any job's) fans it out:
the segments whose audio is not stored yet go out as a group on the same queue, so every worker
of the engine takes some, and a chord callback (`voicefarm.join`) runs once all have reported.
The join puts the segments' masters together (voicefarm.join), encodes the file the client asked
for, stores it with its master and settles the one job, as a plain job's run does. Each segment,
once stored, is named in the job's live feed, so a stream plays the document in order as its
segments finish.

A segment that fails is tried again on its engine (Celery's retry, `segment_retries` times);
then the whole document moves down its chain, and every message of the older dispatch finds
nothing to do (voicefarm.jobs.document). The chord counts a segment once it returns, so a
segment never raises but to retry.
"""

from __future__ import annotations

import logging
from functools import partial

from celery import Task, chord, group, shared_task

from voicefarm.audio.codec import decode
from voicefarm.audio.join import join_segments
from voicefarm.dispatch import names
from voicefarm.dispatch.app import Message, get_celery, part_id, run_options
from voicefarm.errors import JobCanceled
from voicefarm.jobs.document import Ready, begin_join, begin_segment, fail_segment, fan_out, finish_segment
from voicefarm.jobs.feeds import Entry, get_feed
from voicefarm.jobs.lifecycle import Run, finish, reroute
from voicefarm.library.cache import get_cache
from voicefarm.library.renditions import master_key
from voicefarm.settings import get_settings
from voicefarm.store.objects import get_store
from voicefarm.store.outages import best_effort, is_outage, ride_out
from voicefarm.worker.run import attempt, engine, engine_slot, keep, send, worker_name

log = logging.getLogger(__name__)


@shared_task(name=names.DOCUMENT)
def document(job_id: str, dispatch: int) -> None:
    name = engine().name
    plan = ride_out(lambda: fan_out(job_id, name, dispatch), f"document {job_id}: fan out")
    if plan is None:
        return
    hear(job_id, plan.ready)
    options = {**run_options(name, get_settings()), "priority": plan.priority}
    callback = join.si(job_id, dispatch).set(**options, task_id=part_id(job_id, dispatch, "join"))
    if not plan.todo:  # every segment is stored already: only the join is left
        callback.apply_async()
        return
    lost = get_celery().signature(names.LOST)  # a segment that dies without reporting moves the document on
    header = group(
        segment.si(job_id, dispatch, position).set(
            **options, task_id=part_id(job_id, dispatch, str(position)), link_error=lost
        )
        for position in plan.todo
    )
    chord(header, callback).apply_async()
    log.info("document %s: %d segment(s) sent on dispatch %d", job_id, len(plan.todo), dispatch)


# Its result counts it in the chord: the one task of the farm that keeps one.
@shared_task(name=names.SEGMENT, bind=True, ignore_result=False)
def segment(self: Task, job_id: str, dispatch: int, position: int) -> None:
    name = engine().name
    with engine_slot(self) as turn:
        run = ride_out(
            lambda: begin_segment(job_id, name, worker_name(), dispatch, position), f"document {job_id}: begin"
        )
        if not isinstance(run, Run):
            hear(job_id, run)
            return
        try:
            audio, seconds, _ = attempt(run, turn, live=False)
        except JobCanceled:
            log.info("document %s, segment %d: canceled while it ran on %s", job_id, position, name)
            return
        except Exception as e:  # any failure but an outage, the soft time limit included
            if is_outage(e):
                raise  # the engine's run is not to blame: the reconciler sends the document again
            error = f"{type(e).__name__}: {e}"
            log.warning("document %s, segment %d failed on %s: %s", job_id, position, name, error)
            retries = get_settings().segment_retries
            last = self.request.retries >= retries
            following = ride_out(
                lambda: fail_segment(job_id, dispatch, run.attempt_id, error, last=last), f"document {job_id}: fail"
            )
            if not last:
                raise self.retry(countdown=0, max_retries=retries) from None
            if following is not None:
                send(following)
            return
        ready = ride_out(
            lambda: finish_segment(job_id, dispatch, run.attempt_id, run.source, audio, seconds),
            f"document {job_id}: finish segment {position}",
        )
        best_effort(lambda: get_cache().put(audio), "the URL cache")
        hear(job_id, ready)


@shared_task(name=names.JOIN)
def join(job_id: str, dispatch: int) -> None:
    begun = ride_out(lambda: begin_join(job_id, engine().name, worker_name(), dispatch), f"document {job_id}: join")
    if isinstance(begun, Message):
        send(begun)
    if begun is None or isinstance(begun, Message):
        return
    try:
        store = get_store()
        parts = [
            (decode(ride_out(partial(store.get, master_key(source)), f"segment {source}")), pause)
            for source, pause in begun.parts
        ]
        audio = keep(join_segments(parts), begun.key, begun.source, begun.format, begun.rate)
    except Exception as e:
        if is_outage(e):
            raise
        error = f"join: {type(e).__name__}: {e}"
        following = ride_out(lambda: reroute(job_id, begun.attempt_id, error), f"document {job_id}: reroute")
        if following is not None:
            send(following)
        return
    if ride_out(
        lambda: finish(job_id, begun.attempt_id, audio=audio, seconds=begun.seconds), f"document {job_id}: finish"
    ):
        best_effort(lambda: get_cache().put(audio), "the URL cache")
        best_effort(
            lambda: get_feed().append(job_id, Entry(begun.speaker, engine().name, "end")), f"document {job_id}'s feed"
        )


def hear(job_id: str, ready: Ready | None) -> None:
    """Tell the document's live stream which segments it can play now (voicefarm.jobs.relay
    puts them in order). A stream that misses one ends cut short, so a failure here is only
    logged: the document itself does not depend on it."""
    if ready is None:
        return
    try:
        for position, source, pause in ready.segments:
            entry = Entry(ready.speaker, engine().name, "audio", segment=position, source=source, pause=pause)
            get_feed().append(job_id, entry)
    except Exception:
        log.exception("document %s: its live stream misses segments %s", job_id, ready.segments)
