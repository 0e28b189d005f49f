"""What is past keeping: the jobs and batches retention lets go, and the record each object in
the store needs to stay."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.util import AliasedClass

from voicefarm.audio.codec import MASTER
from voicefarm.store.models import ACTIVE, Batch, BatchStatus, ClonedVoice, Job, Rendition


# Both are negated, so neither may be NULL (SQL's unknown) for any row: NOT unknown is unknown,
# and a job whose batch_id is NULL would then keep nothing.
def lone_job_expires(job: type[Job] | AliasedClass[Job], cutoff: datetime) -> ColumnElement[bool]:
    """A job (of the table or an alias of it) in no batch, past retention: finished before `cutoff`."""
    return and_(
        job.batch_id.is_(None), job.status.not_in(ACTIVE), job.finished_at.is_not(None), job.finished_at < cutoff
    )


def job_expires(job: type[Job] | AliasedClass[Job], cutoff: datetime) -> ColumnElement[bool]:
    """A job past retention: alone and finished before `cutoff`, or in a batch that is past it."""
    in_expired_batch = and_(job.batch_id.is_not(None), job.batch_id.in_(select(Batch.id).where(batch_expires(cutoff))))
    return or_(lone_job_expires(job, cutoff), in_expired_batch)


def batch_expires(cutoff: datetime) -> ColumnElement[bool]:
    """A batch done before `cutoff`, none of its jobs in flight."""
    item = aliased(Job)
    return and_(
        Batch.status == BatchStatus.done.value,
        Batch.finished_at < cutoff,
        ~exists(select(item.id).where(item.batch_id == Batch.id, item.status.in_(ACTIVE))),
    )


@dataclass(frozen=True)
class Owner:
    """The record an object in the store belongs to; without it, the object is an orphan."""

    kind: str  # "rendition", "speech" (a master) or "voice"
    id: str  # content key, source key or voice id
    version: int | None = None  # the voice's version


RENDITION = re.compile(r"audio/([^/]+)\.\w+")
SPEECH = re.compile(rf"audio/master/([^/]+)\.{MASTER}")
VOICE = re.compile(r"voices/([^/]+)/v(\d+)/.+")


def owner(key: str) -> Owner | None:
    """Whose object this is, from its key; None for one no record can account for (a temporary
    file of an interrupted write, a name this farm never makes)."""
    if m := SPEECH.fullmatch(key):
        return Owner("speech", m[1])
    if m := RENDITION.fullmatch(key):
        return Owner("rendition", m[1])
    if m := VOICE.fullmatch(key):
        return Owner("voice", m[1], int(m[2]))
    return None


def recorded(s: Session, keys: list[str]) -> set[str]:
    """Which of these object keys a record accounts for: audio its rendition or a job points at,
    a master a rendition of its speech, a voice's sample or latents that voice at that version."""
    owners = {key: o for key in keys if (o := owner(key)) is not None}
    of = {kind: {key: o for key, o in owners.items() if o.kind == kind} for kind in ("rendition", "speech", "voice")}
    kept: set[str] = set()
    if audio := of["rendition"]:
        ids = {o.id for o in audio.values()}
        kept |= set(s.scalars(select(Rendition.object_key).where(Rendition.content_key.in_(ids)))) & audio.keys()
        kept |= set(s.scalars(select(Job.object_key).where(Job.object_key.in_(audio))))
    if speech := of["speech"]:
        ids = {o.id for o in speech.values()}
        alive = set(s.scalars(select(Rendition.source_key).where(Rendition.source_key.in_(ids))))
        kept |= {key for key, o in speech.items() if o.id in alive}
    if voices := of["voice"]:
        ids = {o.id for o in voices.values()}
        versions = dict(s.execute(select(ClonedVoice.id, ClonedVoice.version).where(ClonedVoice.id.in_(ids))).all())
        kept |= {key for key, o in voices.items() if versions.get(o.id) == o.version}
    return kept
