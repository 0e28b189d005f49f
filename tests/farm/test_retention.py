"""Retention against the real servers: age is simulated by backdating rows in PostgreSQL (and
files behind the S3 server), never by waiting. `voicefarm gc --dry-run` reports and deletes
nothing; a real run deletes exactly what expired, from the database, the S3 server and Redis."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import delete, func, select, update

from tests.farm.conftest import ENV, S3, TMP, wait_final
from tests.farm.test_batches import wait_batch
from tests.farm.test_voices import encode, upload
from voicefarm.library import retention
from voicefarm.library.cache import get_cache
from voicefarm.library.renditions import master_key
from voicefarm.settings import get_settings
from voicefarm.store import db
from voicefarm.store.models import (
    Alignment,
    Attempt,
    Batch,
    BatchStatus,
    ClonedVoice,
    Job,
    JobStatus,
    Rendition,
    Tombstone,
    utcnow,
)
from voicefarm.store.objects import get_store

FINISHED_LONG_AGO = timedelta(days=31)  # past VOICEFARM_JOB_RETENTION_DAYS (30)
UNUSED_LONG_AGO = timedelta(days=91)  # past VOICEFARM_AUDIO_RETENTION_DAYS (90)
WHEN = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"
ROW = re.compile(r"│ ([a-z ]+?) +│ +(\d+) │ *([\d,]*) │")


def gc(*args: str) -> dict[str, tuple[int, int | None]]:
    """`voicefarm gc`, as an operator runs it: what -> (count, bytes), read off its table."""
    done = subprocess.run(["voicefarm", "gc", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {what: (int(n), int(size.replace(",", "")) if size else None) for what, n, size in ROW.findall(done.stdout)}
    assert len(rows) == 8, done.stdout
    return rows


def submit(http: httpx.Client, text: str) -> dict:
    job = wait_final(http, http.post("/v1/jobs", json={"text": text}).json()["id"])
    assert job["status"] == "succeeded", job
    return job


def batch(http: httpx.Client, *phrases: str) -> dict:
    return wait_batch(http, http.post("/v1/batches", json={"phrases": list(phrases)}).json()["id"])


def backdate_job(job_id: str, by: timedelta = FINISHED_LONG_AGO) -> None:
    with db.session() as s:
        s.execute(update(Job).where(Job.id == job_id).values(finished_at=utcnow() - by))


def backdate_audio(content_key: str, by: timedelta = UNUSED_LONG_AGO) -> None:
    with db.session() as s:
        s.execute(update(Rendition).where(Rendition.content_key == content_key).values(last_used_at=utcnow() - by))


def rendition(content_key: str) -> Rendition | None:
    with db.session() as s:
        return s.get(Rendition, content_key)


def audio_objects(content_key: str) -> list[str]:
    """The audio object and the lossless master of a rendition that exists."""
    row = rendition(content_key)
    assert row is not None, content_key
    return [row.object_key, master_key(row.source_key)]


def in_redis(content_key: str) -> bool:
    cache = get_cache()
    assert cache.redis is not None
    return bool(cache.redis.exists(f"{ENV['VOICEFARM_REDIS_PREFIX']}:audio:{content_key}"))


def exists(model: type, key: str) -> bool:
    with db.session() as s:
        return s.get(model, key) is not None


def attempts_of(job_ids: list[str]) -> int:
    with db.session() as s:
        return s.scalar(select(func.count(Attempt.id)).where(Attempt.job_id.in_(job_ids))) or 0


def queued_copy(of: str, **fields: object) -> str:
    """A job row that waits in a queue nobody consumes (the ghost engine has no worker), made
    long ago: active, it must never expire."""
    with db.session() as s:
        job = s.get(Job, of)
        assert job is not None
        columns = {c.key: getattr(job, c.key) for c in Job.__table__.columns if c.key != "id"}
        copy = Job(
            **{
                **columns,
                "status": JobStatus.queued.value,
                "engine": "ghost",
                "content_key": os.urandom(32).hex(),
                "object_key": None,
                "started_at": None,
                "finished_at": None,
                "idempotency_key": None,
                "leader_id": None,
                "created_at": utcnow() - timedelta(days=60),
                **fields,
            }
        )
        s.add(copy)
        s.flush()
        return copy.id


def test_gc_deletes_exactly_what_expired_and_a_dry_run_nothing(http: httpx.Client) -> None:
    old = submit(http, "Retention: an old job, its audio unused for months.")
    recent = submit(http, "Retention: a recent job.")
    pinned = submit(http, "Retention: a recent job whose audio nobody else uses.")
    history = submit(http, "Retention: an old job whose audio is still in use.")
    old_batch = batch(http, "Retention one.", "Retention two.")
    recent_batch = batch(http, "Retention three.")
    open_batch = batch(http, "Retention four.")
    old_items = [item["job_id"] for item in old_batch["manifest"]]
    recent_item, open_item = recent_batch["manifest"][0]["job_id"], open_batch["manifest"][0]["job_id"]
    key = {job["id"]: job["content_key"] for job in (old, recent, pinned, history)}
    with db.session() as s:
        key |= dict(
            s.execute(select(Job.id, Job.content_key).where(Job.id.in_([*old_items, recent_item, open_item]))).all()
        )

    active = queued_copy(old["id"])  # queued since two months ago
    active_in_batch = queued_copy(open_item)  # in the open batch, beside its old finished item
    try:
        for job_id in [old["id"], history["id"], *old_items, recent_item, open_item]:
            backdate_job(job_id)
        for job_id in [old["id"], pinned["id"], *old_items, recent_item]:
            backdate_audio(key[job_id])
        with db.session() as s:
            s.execute(update(Batch).where(Batch.id == old_batch["id"]).values(finished_at=utcnow() - FINISHED_LONG_AGO))
            # Still running: one of its jobs waits. Its old, finished item waits with it.
            s.execute(update(Batch).where(Batch.id == open_batch["id"]).values(status=BatchStatus.running.value))

        expired_jobs = [old["id"], history["id"], *old_items]
        expired_audio = [key[j] for j in (old["id"], *old_items)]
        expired_objects = [o for k in expired_audio for o in audio_objects(k)]
        kept_jobs = [recent["id"], pinned["id"], recent_item, open_item, active, active_in_batch]
        kept_audio = [key[j] for j in (recent["id"], pinned["id"], history["id"], recent_item, open_item)]
        kept_objects = [o for k in kept_audio for o in audio_objects(k)]
        assert all(in_redis(k) for k in expired_audio + kept_audio)
        # Word timestamps of one expired speech and one kept: they go with their speech's master.
        aligned = {k: rendition(k).source_key for k in (key[old["id"]], key[recent["id"]])}
        with db.session() as s:
            s.add_all(Alignment(source_key=src, source="aligned", words=[]) for src in aligned.values())
        store = get_store()
        audio_bytes = sum(store.stat(rendition(k).object_key).size for k in expired_audio)
        master_bytes = sum(store.stat(master_key(rendition(k).source_key)).size for k in expired_audio)

        expected = {
            "jobs": (4, None),
            "attempts": (4, None),
            "batches": (1, None),
            "audio renditions": (3, audio_bytes),
            "audio masters": (3, master_bytes),
            "word timestamps": (1, None),
            "unrecorded objects": (0, 0),
            "tombstones": (0, None),
        }
        assert gc("--dry-run") == expected
        assert all(exists(Job, j) for j in expired_jobs) and attempts_of(expired_jobs) == 4
        assert exists(Batch, old_batch["id"]) and all(rendition(k) for k in expired_audio)
        assert all(store.exists(o) for o in expired_objects) and all(in_redis(k) for k in expired_audio)

        assert gc() == expected
        assert not any(exists(Job, j) for j in expired_jobs) and attempts_of(expired_jobs) == 0
        assert not exists(Batch, old_batch["id"])
        assert not any(rendition(k) for k in expired_audio)
        assert not any(store.exists(o) for o in expired_objects)  # gone from the S3 server
        assert not any(in_redis(k) for k in expired_audio)

        assert all(exists(Job, j) for j in kept_jobs) and attempts_of(kept_jobs[:4]) == 4
        assert exists(Batch, recent_batch["id"]) and exists(Batch, open_batch["id"])
        assert all(rendition(k) for k in kept_audio) and all(in_redis(k) for k in kept_audio)
        assert all(store.exists(o) for o in kept_objects)
        assert not exists(Alignment, aligned[key[old["id"]]]) and exists(Alignment, aligned[key[recent["id"]]])
        with db.session() as s:
            stones = set(s.execute(select(Tombstone.kind, Tombstone.id)).all())
        assert {("job", j) for j in expired_jobs} | {("batch", old_batch["id"])} <= stones

        assert all(n == 0 for n, _ in gc().values())  # nothing left to do
    finally:
        with db.session() as s:
            s.execute(delete(Job).where(Job.id.in_([active, active_in_batch])))
            s.execute(update(Batch).where(Batch.id == open_batch["id"]).values(status=BatchStatus.done.value))


def test_expired_ids_answer_404_expired_to_their_tenant_only(http: httpx.Client, other_key: str) -> None:
    job = submit(http, "Retention: ask for me after I expired.")
    expiring = batch(http, "Retention: a batch that expires.")
    for job_id in [job["id"], expiring["manifest"][0]["job_id"]]:
        backdate_job(job_id)
    backdate_audio(job["content_key"])
    with db.session() as s:
        s.execute(update(Batch).where(Batch.id == expiring["id"]).values(finished_at=utcnow() - FINISHED_LONG_AGO))
    report = retention.collect(get_settings())
    assert (report.jobs, report.batches, report.audio) == (2, 1, 1)

    expired = rf"job {job['id']} expired on {WHEN} \(VOICEFARM_JOB_RETENTION_DAYS=30\)"
    for path in (f"/v1/jobs/{job['id']}", f"/v1/jobs/{job['id']}/audio"):
        r = http.get(path)
        assert r.status_code == 404 and re.fullmatch(expired, r.json()["error"]), r.text
    r = http.get(f"/v1/batches/{expiring['id']}")
    assert r.status_code == 404 and re.fullmatch(
        rf"batch {expiring['id']} expired on {WHEN} \(VOICEFARM_JOB_RETENTION_DAYS=30\)", r.json()["error"]
    )
    name = job["audio_url"].rsplit("/", 1)[1]
    r = http.get(job["audio_url"])
    assert r.status_code == 404, r.text
    assert re.fullmatch(
        rf"audio {name} expired on {WHEN}, unused for VOICEFARM_AUDIO_RETENTION_DAYS=90 days", r.json()["error"]
    )

    with httpx.Client(base_url=str(http.base_url), headers={"X-API-Key": other_key}) as other:
        assert other.get(f"/v1/jobs/{job['id']}").json() == {"error": f"no job {job['id']!r}"}
        assert other.get(f"/v1/jobs/{job['id']}/audio").json() == {"error": f"no job {job['id']!r}"}
        assert other.get(f"/v1/batches/{expiring['id']}").json() == {"error": f"no batch {expiring['id']!r}"}
    never = "0" * 32
    assert http.get(f"/v1/jobs/{never}").json() == {"error": f"no job {never!r}"}


def test_a_use_keeps_audio_alive(http: httpx.Client) -> None:
    hit_body = {"text": "Retention: a cache hit keeps me."}
    looked_up_body = {"text": "Retention: a job answered from the record keeps me."}
    jobs = [submit(http, body["text"]) for body in (hit_body, looked_up_body)]
    for job in jobs:
        backdate_job(job["id"])
        backdate_audio(job["content_key"])
    hit_key, looked_up_key = (job["content_key"] for job in jobs)
    cache = get_cache()
    assert cache.redis is not None
    cache.forget([looked_up_key])  # its Redis entry expired: the request is answered from the record

    for body in (hit_body, looked_up_body):
        r = http.post("/v1/jobs", json=body)
        assert r.status_code == 200 and r.json()["cache"] == "hit", r.text
    assert in_redis(looked_up_key)  # refilled from the record
    dry = retention.collect(get_settings(), dry_run=True)
    assert (dry.jobs, dry.audio) == (2, 0)  # the uses are still only in Redis, and count

    report = retention.collect(get_settings())
    assert (report.jobs, report.audio) == (2, 0) and report.uses >= 2
    for key in (hit_key, looked_up_key):
        row = rendition(key)
        assert row is not None and utcnow() - row.last_used_at < timedelta(minutes=5)
        assert all(get_store().exists(o) for o in audio_objects(key)) and in_redis(key)
        assert http.post("/v1/jobs", json=hit_body if key == hit_key else looked_up_body).json()["cache"] == "hit"


def backing_file(key: str) -> Path:
    """The file behind an object on the test S3 server (rclone serves a directory)."""
    return TMP / "s3" / S3.bucket / key


def age(key: str, by: timedelta) -> None:
    then = time.time() - by.total_seconds()
    os.utime(backing_file(key), (then, then))


def test_unrecorded_objects_go_only_after_the_grace_period(http: httpx.Client) -> None:
    store = get_store()
    orphans = {
        f"audio/{os.urandom(32).hex()}.wav": b"left by a worker that died before recording it",
        f"audio/master/{os.urandom(32).hex()}.flac": b"a master whose renditions are long gone",
        f"voices/{os.urandom(16).hex()}/v1/sample.flac": b"a sample whose voice row is gone",
    }
    for key, data in orphans.items():
        store.put(key, data, "application/octet-stream")
    recorded = audio_objects(submit(http, "Retention: recorded, however old the file.")["content_key"])

    assert gc("--dry-run")["unrecorded objects"] == (0, 0)  # just written: within the grace period
    assert gc()["unrecorded objects"] == (0, 0) and all(store.exists(k) for k in orphans)

    grace = timedelta(seconds=get_settings().gc_orphan_grace_seconds)
    for key in [*orphans, *recorded]:
        age(key, grace + timedelta(minutes=5))
    expected = (3, sum(len(data) for data in orphans.values()))
    assert gc("--dry-run")["unrecorded objects"] == expected
    assert all(store.exists(k) for k in orphans)
    assert gc()["unrecorded objects"] == expected
    assert not any(store.exists(k) for k in orphans)
    assert all(store.exists(k) for k in recorded)


def test_the_reconciler_collects_on_its_schedule(http: httpx.Client) -> None:
    job = submit(http, "Retention: collected by the reconciler's loop.")
    reconciler = subprocess.Popen(
        ["voicefarm", "reconcile", "--every", "0.5"],
        env={**os.environ, "VOICEFARM_GC_INTERVAL_SECONDS": "1", "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in reconciler.stdout or []], daemon=True).start()

    def next_collection() -> str:
        while not (line := lines.get(timeout=60)).startswith("gc "):
            pass
        return line

    try:
        assert next_collection().startswith("gc deleted 0 jobs")  # at start: nothing of this job yet
        backdate_job(job["id"])
        while not next_collection().startswith("gc deleted 1 jobs"):
            pass
        assert not exists(Job, job["id"]) and exists(Tombstone, ("job", job["id"]))
    finally:
        reconciler.terminate()
        reconciler.wait(30)


def test_cloned_voices_are_not_history(http: httpx.Client, speech) -> None:
    voice = upload(http, encode(*speech)).json()
    sample = f"voices/{voice['id']}/v1/sample.flac"
    long_ago = utcnow() - timedelta(days=400)
    with db.session() as s:
        s.execute(
            update(ClonedVoice)
            .where(ClonedVoice.id == voice["id"])
            .values(created_at=long_ago, updated_at=long_ago, consent_at=long_ago)
        )
    age(sample, timedelta(days=400))
    retention.collect(get_settings())
    assert exists(ClonedVoice, voice["id"]) and get_store().exists(sample)
    assert http.get(f"/v1/voices/{voice['id']}").status_code == 200
    assert http.delete(f"/v1/voices/{voice['id']}").status_code == 204  # its owner deletes it: purged
    assert not exists(ClonedVoice, voice["id"]) and not get_store().exists(sample)
