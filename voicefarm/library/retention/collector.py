"""The collector: deletes, in chunks of `CHUNK` rows, what the policy no longer keeps, and
reports what went (or, in a dry run, what would)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Select, and_, bindparam, delete, exists, func, select, update
from sqlalchemy.orm import Session, aliased

from voicefarm.library.cache import AudioCache, get_cache
from voicefarm.library.renditions import content_key_of, master_key
from voicefarm.library.retention.policy import batch_expires, job_expires, lone_job_expires, recorded
from voicefarm.library.retention.tombstones import bury
from voicefarm.settings import Settings
from voicefarm.store import db
from voicefarm.store.models import Alignment, Attempt, Batch, Job, Rendition, Tombstone, utcnow
from voicefarm.store.objects import Store, get_store

CHUNK = 500  # rows per transaction: years of history never go in one long lock
T = TypeVar("T")


@dataclass
class Report:
    """What a collection deleted, or with `dry_run`, would delete."""

    dry_run: bool
    uses: int = 0  # uses noted in Redis, folded into the renditions' records
    jobs: int = 0
    attempts: int = 0
    batches: int = 0
    audio: int = 0
    audio_bytes: int = 0
    masters: int = 0
    master_bytes: int = 0
    alignments: int = 0  # word timestamps of speeches whose master went
    orphans: int = 0
    orphan_bytes: int = 0
    tombstones: int = 0

    def rows(self) -> list[tuple[str, int, int | None]]:
        """(what, how many, bytes where known)."""
        return [
            ("jobs", self.jobs, None),
            ("attempts", self.attempts, None),
            ("batches", self.batches, None),
            ("audio renditions", self.audio, self.audio_bytes),
            ("audio masters", self.masters, self.master_bytes),
            ("word timestamps", self.alignments, None),
            ("unrecorded objects", self.orphans, self.orphan_bytes),
            ("tombstones", self.tombstones, None),
        ]

    def summary(self) -> str:
        return ", ".join(f"{n} {what}" + (f" ({size:,} bytes)" if size else "") for what, n, size in self.rows())


def collect(settings: Settings, *, dry_run: bool = False) -> Report:
    """Delete (or count) everything past its retention; see the package's docstring."""
    now, report = utcnow(), Report(dry_run)
    cache, store = get_cache(), get_store()
    job_cutoff = now - timedelta(days=settings.job_retention_days)
    with db.session() as s:
        if not dry_run:
            report.uses = fold_uses(s, cache)
        expire_jobs(s, job_cutoff, now, report)
        expire_batches(s, job_cutoff, now, report)
        expire_audio(s, cache, store, now - timedelta(days=settings.audio_retention_days), job_cutoff, now, report)
        collect_orphans(s, store, now - timedelta(seconds=settings.gc_orphan_grace_seconds), report)
        old = Tombstone.expired_at < now - timedelta(days=settings.tombstone_retention_days)
        if dry_run:
            report.tombstones = count(s, select(Tombstone.id).where(old))
        else:
            report.tombstones = db.changed(s, delete(Tombstone).where(old))
    return report


def fold_uses(s: Session, cache: AudioCache) -> int:
    """Write the uses Redis noted into `renditions.last_used_at`; returns how many."""
    newer = (
        update(Rendition)
        .where(Rendition.content_key == bindparam("key"), Rendition.last_used_at < bindparam("at"))
        .values(last_used_at=bindparam("at"))
    )
    folded = 0
    for chunk in chunks(cache.take_uses()):
        # On the connection: a Core executemany, one UPDATE per key, not the ORM's bulk by primary key.
        s.connection().execute(newer, [{"key": key, "at": at} for key, at in chunk])
        folded += len(chunk)
    s.commit()
    cache.folded()
    return folded


def expire_jobs(s: Session, cutoff: datetime, now: datetime, report: Report) -> None:
    """Finished jobs in no batch, finished before `cutoff`, with their attempts."""
    expired = select(Job.id, Job.tenant_id).where(lone_job_expires(Job, cutoff))
    if report.dry_run:
        report.jobs += count(s, expired)
        report.attempts += count(s, select(Attempt.id).where(Attempt.job_id.in_(expired.with_only_columns(Job.id))))
        return
    while rows := s.execute(expired.limit(CHUNK)).all():
        forget_jobs(s, rows, now, report)


def expire_batches(s: Session, cutoff: datetime, now: datetime, report: Report) -> None:
    """Batches done before `cutoff`, with all their jobs."""
    expired = select(Batch.id, Batch.tenant_id).where(batch_expires(cutoff))
    if report.dry_run:
        items = select(Job.id).where(Job.batch_id.in_(expired.with_only_columns(Batch.id)))
        report.batches += count(s, expired)
        report.jobs += count(s, items)
        report.attempts += count(s, select(Attempt.id).where(Attempt.job_id.in_(items)))
        return
    while batches := s.execute(expired.limit(CHUNK)).all():
        for batch_id, _ in batches:
            while rows := s.execute(select(Job.id, Job.tenant_id).where(Job.batch_id == batch_id).limit(CHUNK)).all():
                forget_jobs(s, rows, now, report)
        bury(s, "batch", batches, now)
        report.batches += db.changed(s, delete(Batch).where(Batch.id.in_([batch_id for batch_id, _ in batches])))
        s.commit()


def forget_jobs(s: Session, rows: Iterable[Any], now: datetime, report: Report) -> None:
    """Delete these (id, tenant) jobs and their attempts, leaving tombstones, in one transaction."""
    rows = list(rows)
    ids = [job_id for job_id, _ in rows]
    report.attempts += count(s, select(Attempt.id).where(Attempt.job_id.in_(ids)))
    bury(s, "job", rows, now)
    report.jobs += db.changed(s, delete(Job).where(Job.id.in_(ids)))  # attempts: ON DELETE CASCADE
    s.commit()


def expire_audio(
    s: Session,
    cache: AudioCache,
    store: Store,
    cutoff: datetime,
    job_cutoff: datetime,
    now: datetime,
    report: Report,
) -> None:
    """Audio last used before `cutoff` that no kept job points at. The row goes first, then its
    Redis entry (so nothing refills it), then the object; a master once its speech has no
    rendition left."""
    kept_job = aliased(Job)
    # A job that expires in this run does not keep its audio: the same in a dry run, before it is deleted.
    pointed_at = exists(
        select(kept_job.id).where(kept_job.object_key == Rendition.object_key, ~job_expires(kept_job, job_cutoff))
    )
    unused = and_(Rendition.last_used_at < cutoff, ~pointed_at)
    speeches: Counter[str] = Counter()  # dry run: how many renditions of each speech would go
    after = ""
    while rows := s.execute(
        select(Rendition.content_key, Rendition.object_key, Rendition.source_key)
        .where(unused, Rendition.content_key > after)
        .order_by(Rendition.content_key)
        .limit(CHUNK)
    ).all():
        after = rows[-1].content_key
        # A use noted in Redis since the fold (in a dry run: any not folded) keeps it too.
        recent = {key for key, at in cache.last_uses([r.content_key for r in rows]).items() if at >= cutoff}
        rows = [r for r in rows if r.content_key not in recent]
        if report.dry_run:
            report.audio += len(rows)
            report.audio_bytes += sizes(store, [r.object_key for r in rows])
            speeches.update(r.source_key for r in rows if r.source_key)
            continue
        deleted = s.execute(
            delete(Rendition)
            .where(Rendition.content_key.in_([r.content_key for r in rows]), unused)
            .returning(Rendition.object_key, Rendition.source_key)
        ).all()
        bury(s, "audio", [(object_key.removeprefix("audio/"), None) for object_key, _ in deleted], now)
        s.commit()
        cache.forget([content_key_of(object_key) for object_key, _ in deleted])
        report.audio += len(deleted)
        report.audio_bytes += remove(store, [object_key for object_key, _ in deleted])
        sources = {source for _, source in deleted if source}
        left = set(s.scalars(select(Rendition.source_key).where(Rendition.source_key.in_(sources))))
        masters = [master_key(source) for source in sources - left]
        report.masters += len(masters)
        report.master_bytes += remove(store, masters)
        report.alignments += db.changed(s, delete(Alignment).where(Alignment.source_key.in_(sources - left)))
        s.commit()
    for chunk in chunks(speeches):
        totals = dict(
            s.execute(
                select(Rendition.source_key, func.count())
                .where(Rendition.source_key.in_(chunk))
                .group_by(Rendition.source_key)
            ).all()
        )
        gone = [source for source in chunk if totals.get(source) == speeches[source]]
        report.masters += len(gone)
        report.master_bytes += sizes(store, [master_key(source) for source in gone])
        report.alignments += count(s, select(Alignment.source_key).where(Alignment.source_key.in_(gone)))


def collect_orphans(s: Session, store: Store, cutoff: datetime, report: Report) -> None:
    """Objects under audio/ and voices/ that no record accounts for, last written before `cutoff`."""
    for prefix in ("audio/", "voices/"):
        for page in chunks(store.objects(prefix)):
            kept = recorded(s, [o.key for o in page])
            for listed in page:
                if listed.key in kept:
                    continue
                # Ask again: a listing may come from a server's cache, and an object stored again
                # since (about to be recorded) is young again.
                current = store.stat(listed.key)
                if current is None or current.modified >= cutoff:
                    continue
                report.orphans += 1
                report.orphan_bytes += current.size
                if not report.dry_run:
                    store.delete(listed.key)


def count(s: Session, query: Select[*tuple[Any, ...]]) -> int:
    return s.scalar(select(func.count()).select_from(query.subquery())) or 0


def sizes(store: Store, keys: list[str]) -> int:
    return sum(found.size for key in keys if (found := store.stat(key)) is not None)


def remove(store: Store, keys: list[str]) -> int:
    """Delete these objects; returns the bytes they held."""
    freed = sizes(store, keys)
    for key in keys:
        store.delete(key)
    return freed


def chunks(items: Iterable[T]) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
