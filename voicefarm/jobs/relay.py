"""Following a job's live audio for a listener: from its feed (voicefarm.jobs.feeds), whichever
attempt makes it.

A job that is queued has nothing in its feed yet: the relay waits. The first attempt that sends
audio is the one it follows to its end. An attempt that fails before its first piece is passed
over, and the relay goes on with the next engine's; one that fails after it ends the relay
with StreamBroken, since the next engine's audio would not continue it. A job that follows
another (the same speech, already in flight) is heard through that one's feed. A document's
segments arrive as they are ready, in any order: the relay holds each until those before it
have been heard, so the listener hears the document in order, and yields each as a Said.

Between entries the relay asks the job's state, so it also ends when the feed says nothing
more: the job failed for good (JobFailed) or was canceled (JobCanceled, at once from its
`canceled` entry), or it succeeded with no audio to relay, as a job
answered by another's synthesis does; then the relay yields the stored object's key instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from voicefarm.engines.base import Audio
from voicefarm.errors import JobCanceled, JobFailed, NotReady, StreamBroken
from voicefarm.jobs.feeds import Feed
from voicefarm.store.models import ACTIVE, JobStatus

CHECK_SECONDS = 1.0  # a silent feed is this long between looks at the job's state


@dataclass(frozen=True)
class JobState:
    status: str
    leader_id: str | None
    object_key: str | None
    error: str | None


@dataclass(frozen=True)
class Said:
    """A document's segment, next in order: its stored master and the pause after it."""

    source: str
    pause: float


@dataclass(frozen=True)
class Stored:
    """The job is done and its live audio is not to be had: serve this object instead."""

    object_key: str


async def follow(
    feed: Feed, job_id: str, state: Callable[[], Awaitable[JobState]], check: float = CHECK_SECONDS
) -> AsyncIterator[Audio | Said | Stored]:
    """The job's audio, piece by piece as its worker publishes it (or one Stored, at once)."""
    source, cursor = job_id, feed.start
    following: tuple[int, str] | None = None  # (attempt, engine) whose audio the listener hears
    sent = False
    passed_over: set[int] = set()
    held: dict[int, Said] = {}  # a document's segments that came before their turn
    turn = 0  # the segment to be heard next
    done = False  # the job succeeded: what its feed still holds is all there is
    while True:
        entries, cursor = await feed.read(source, cursor, check)
        for entry in entries:
            if entry.kind == "canceled":  # no attempt's: it names the job, maybe another follower
                if entry.job == job_id:
                    raise JobCanceled(f"job {job_id} was canceled")
                continue
            if entry.attempt in passed_over:
                continue
            if following is not None and entry.attempt != following[0] and sent:
                # Its worker died after sending audio; the job was sent again.
                raise StreamBroken(
                    f"job {job_id}: its attempt on {following[1]} stopped after its audio began; "
                    f"the job went on to {entry.engine}, poll it for the audio",
                    job_id,
                )
            if following is not None and entry.attempt != following[0]:
                held.clear()  # another engine: it speaks the document from its start
            following = (entry.attempt, entry.engine)
            if entry.kind == "audio":
                if entry.segment is None or entry.source is None:
                    assert entry.audio is not None
                    sent = True
                    yield entry.audio
                    continue
                if entry.segment >= turn:  # an earlier one is a repeat, from a dispatch sent again
                    held.setdefault(entry.segment, Said(entry.source, entry.pause))
                while turn in held:
                    sent = True
                    yield held.pop(turn)
                    turn += 1
            elif entry.kind == "end":
                if held:
                    raise StreamBroken(f"job {job_id}: segment {turn} of the document never came", job_id)
                return
            elif sent:
                raise StreamBroken(
                    f"job {job_id}: {entry.engine} failed after its audio began ({entry.error}); "
                    "the job goes on down its chain, poll it for the audio",
                    job_id,
                )
            else:
                passed_over.add(entry.attempt)
                following = None
        if entries:
            continue
        if done:
            return  # succeeded and its end was never written (its worker died just after)
        job = await state()
        if job.status in ACTIVE:
            leader = job.leader_id or job_id
            if leader != source and not sent:
                source, cursor, following = leader, feed.start, None
            continue
        if job.status == JobStatus.canceled.value:
            raise JobCanceled(f"job {job_id} was canceled")
        if job.status != JobStatus.succeeded.value:
            if sent:
                raise StreamBroken(f"job {job_id} failed after its audio began: {job.error}", job_id)
            raise JobFailed(f"job {job_id} failed: {job.error}")
        if not sent:
            if job.object_key is None:
                raise NotReady(f"job {job_id} succeeded, but its audio has since been deleted")
            yield Stored(job.object_key)
            return
        done = True
