"""The timestamps stage: asking for a speech's alignment when a job that wants it succeeds,
making it on the aligner (`voicefarm aligner`, queue `voicefarm.align`), and reading it back.

An alignment belongs to a speech (its source key), not to a job: every job and rendition of
the same speech, cache hits included, shares the one alignment, made once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict

from sqlalchemy import event
from sqlalchemy.orm import Session

from voicefarm.audio import alignment
from voicefarm.audio.codec import decode
from voicefarm.dispatch.app import align
from voicefarm.engines.base import Word
from voicefarm.errors import NotFound, NotReady
from voicefarm.library.renditions import master_key
from voicefarm.store import db
from voicefarm.store.models import Alignment, Job, JobStatus
from voicefarm.store.objects import get_store

log = logging.getLogger(__name__)


def record(s: Session, source_key: str, words: Sequence[Word], source: str) -> None:
    """Keep a speech's alignment; a second one of the same speech (a race) changes nothing."""
    row = {"source_key": source_key, "source": source, "words": [asdict(w) for w in words]}
    s.execute(db.upsert(s, Alignment).values(row).on_conflict_do_nothing(index_elements=["source_key"]))


def request(s: Session, job: Job) -> None:
    """Have this succeeded job's speech aligned once the transaction commits (the aligner reads
    its stored master), unless it already is."""
    source, text, language = job.link.source, job.spoken, job.language
    if s.get(Alignment, source) is None:
        event.listen(s, "after_commit", lambda _: align(source, text, language), once=True)


def make(source_key: str, text: str, language: str) -> None:
    """The aligner's run: align the speech's stored master to its text and keep the result."""
    with db.session() as s:
        if s.get(Alignment, source_key) is not None:
            return  # asked twice (two jobs of one speech): made once
    audio = decode(get_store().get(master_key(source_key)))
    words, source = alignment.align(text, language, audio)
    with db.session() as s:
        record(s, source_key, words, source)
    log.info("aligned %s: %d words, %s, %.2f s of audio", source_key, len(words), source, audio.duration)


def of_job(s: Session, job: Job) -> Alignment:
    """A job's alignment. NotFound when it never asked for timestamps, NotReady until it
    succeeded and its speech is aligned."""
    if not job.timestamps:
        raise NotFound(f'job {job.id} did not ask for timestamps; submit it with "timestamps": true')
    if job.status != JobStatus.succeeded.value:
        raise NotReady(f"job {job.id} is {job.status}; its timestamps are not ready")
    row = s.get(Alignment, job.link.source)
    if row is None and not job.object_key:  # purged with its audio: never aligned now
        raise NotReady(f"job {job.id} succeeded, but its audio and timestamps have since been deleted")
    if row is None:
        raise NotReady(f"job {job.id} succeeded; its audio is being aligned, try again shortly")
    return row
