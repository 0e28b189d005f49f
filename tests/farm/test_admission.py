"""Admission limits and private caches on the real farm: limits set with the real `voicefarm
tenants set` against PostgreSQL, windows counted in Redis, jobs synthesized by real workers."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from redis.asyncio import Redis as AsyncRedis
from sqlalchemy import func, select

from tests.farm.conftest import wait_final
from voicefarm.errors import TooManyRequests
from voicefarm.ops.supervisor import Farm
from voicefarm.settings import get_settings
from voicefarm.store import db
from voicefarm.store.models import Attempt, Batch, Job
from voicefarm.tenancy import admission
from voicefarm.tenancy.auth import create_key
from voicefarm.tenancy.windows import RedisWindows

NOON = 1_800_000_000.0 - 1_800_000_000.0 % 86_400 + 12 * 3600  # a UTC noon, on the minute


def tenants_set(tenant: str, *options: str) -> None:
    done = subprocess.run(["voicefarm", "tenants", "set", tenant, *options], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def new_tenant(farm: Farm) -> Iterator:
    """Makes a tenant (`voicefarm tenants set` with the options given) and a client with its key."""
    clients: list[httpx.Client] = []

    def make(*options: str) -> tuple[str, httpx.Client]:
        name = f"adm-{secrets.token_hex(4)}"
        with db.session() as s:
            key = create_key(s, name, name="tests")
        if options:
            tenants_set(name, *options)
        clients.append(httpx.Client(base_url=farm.url, headers={"X-API-Key": key}, timeout=30))
        return name, clients[-1]

    yield make
    for client in clients:
        client.close()


def kept(tenant: str, text: str) -> tuple[int, int]:
    """The tenant's jobs with this text, and its batches."""
    with db.session() as s:
        jobs = s.scalar(select(func.count(Job.id)).where(Job.tenant_id == tenant, Job.text == text))
        batches = s.scalar(select(func.count(Batch.id)).where(Batch.tenant_id == tenant))
    return jobs or 0, batches or 0


def seconds_left(window: int) -> float:
    return window - time.time() % window


def test_redis_windows_count_both_or_neither_expire_and_roll_over(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [NOON + 50.0]
    monkeypatch.setattr("voicefarm.tenancy.windows.base.clock", lambda: now[0])
    p = admission.Policy(f"adm-{secrets.token_hex(4)}", 1, 2, 30, "shared", "salt")
    settings = get_settings()

    async def run() -> None:
        redis = AsyncRedis.from_url(settings.redis_url)
        windows = RedisWindows(redis, settings.redis_prefix)
        first = await windows.take(p, 1, 10)
        await windows.take(p, 1, 10)
        with pytest.raises(TooManyRequests) as over:
            await windows.take(p, 1, 1)
        assert over.value.retry_after == 10 and "limit of 2 submissions per minute: 2 this minute" in over.value.message
        minute, day = windows.keys(first)
        assert minute.startswith(f"{settings.redis_prefix}:admission:{p.tenant_id}:")
        assert [await redis.get(minute), await redis.get(day)] == [b"2", b"20"]  # the refusal counted nothing
        assert 60 < await redis.ttl(minute) <= 120 and 86_400 < await redis.ttl(day) <= 2 * 86_400

        now[0] = NOON + 60  # the next minute, the same day
        third = await windows.take(p, 1, 10)
        with pytest.raises(TooManyRequests) as over:
            await windows.take(p, 1, 1)
        assert over.value.retry_after == 12 * 3600 - 60 and "limit of 30 characters per day" in over.value.message
        await windows.give_back(third)
        assert await redis.get(day) == b"20"
        await windows.take(p, 1, 10)
        await redis.aclose()

    asyncio.run(run())


def test_over_submissions_per_minute_refuses_every_endpoint_and_keeps_nothing(new_tenant) -> None:
    if seconds_left(60) < 20:  # all of it within one minute's window
        time.sleep(seconds_left(60))
    name, http = new_tenant("--submissions-per-minute", "2")
    first = http.post("/v1/jobs", json={"text": "Counted in Redis."})
    again = http.post("/v1/jobs", json={"text": "Counted in Redis."})  # a follower counts too
    assert first.status_code == 202 and again.status_code == 202, again.text

    message = (
        f"{name} is over its limit of 2 submissions per minute: 2 this minute, this request asks for {{n}} "
        "(VOICEFARM_SUBMISSIONS_PER_MINUTE or voicefarm tenants set --submissions-per-minute)"
    )
    job = http.post("/v1/jobs", json={"text": "Refused by the minute."})
    batch = http.post("/v1/batches", json={"phrases": ["Refused by the minute.", "Also refused."]})
    speech = http.post("/v1/audio/speech", json={"model": "tts-1", "input": "Refused by the minute.", "voice": "alloy"})
    assert [r.status_code for r in (job, batch, speech)] == [429, 429, 429]
    assert job.json()["error"] == message.format(n=1) and batch.json()["error"] == message.format(n=2)
    assert speech.json()["error"]["message"] == message.format(n=1)
    for r in (job, batch, speech):
        assert 0 < int(r.headers["retry-after"]) <= 60 and abs(int(r.headers["retry-after"]) - seconds_left(60)) < 2
    assert kept(name, "Refused by the minute.") == (0, 0)
    for r in (first, again):
        assert wait_final(http, r.json()["id"])["status"] == "succeeded"


def test_characters_per_day_count_cache_hits(new_tenant) -> None:
    text = "Twenty-five characters ok"
    name, http = new_tenant("--chars-per-day", "60")
    assert wait_final(http, http.post("/v1/jobs", json={"text": text}).json()["id"])["status"] == "succeeded"
    hit = http.post("/v1/jobs", json={"text": text})
    assert hit.status_code == 200 and hit.json()["cache"] == "hit"
    refused = http.post("/v1/jobs", json={"text": text})
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == (
        f"{name} is over its limit of 60 characters per day: 50 today (UTC), this request asks for 25 "
        "(VOICEFARM_CHARS_PER_DAY or voicefarm tenants set --chars-per-day)"
    )
    assert abs(int(refused.headers["retry-after"]) - seconds_left(86_400)) < 2


def test_over_active_jobs_is_refused_until_one_finishes(new_tenant) -> None:
    name, http = new_tenant("--max-active-jobs", "1")
    message = (
        f"{name} is over its limit of 1 queued and running jobs: {{active}} now, this request adds {{n}} "
        "(VOICEFARM_MAX_ACTIVE_JOBS or voicefarm tenants set --max-active-jobs)"
    )
    batch = http.post("/v1/batches", json={"phrases": ["One of two.", "Two of two."]})
    assert batch.status_code == 429 and batch.json()["error"] == message.format(active=0, n=2)
    assert batch.headers["retry-after"] == str(admission.ACTIVE_RETRY_SECONDS)
    assert kept(name, "One of two.") == (0, 0)

    long = " ".join(["A job long enough to be still in flight when the next one comes."] * 4)
    first = http.post("/v1/jobs", json={"text": long})
    assert first.status_code == 202
    second = http.post("/v1/jobs", json={"text": "The next one."})
    assert second.status_code == 429 and second.json()["error"] == message.format(active=1, n=1)
    assert kept(name, "The next one.") == (0, 0)
    assert wait_final(http, first.json()["id"])["status"] == "succeeded"
    admitted = http.post("/v1/jobs", json={"text": "The next one."})
    assert admitted.status_code == 202, admitted.text
    assert wait_final(http, admitted.json()["id"])["status"] == "succeeded"


def test_a_private_cache_shares_nothing_with_other_tenants(new_tenant, other_key: str, farm: Farm) -> None:
    private, a = new_tenant("--cache", "private")
    _, c = new_tenant()
    with httpx.Client(base_url=farm.url, headers={"X-API-Key": other_key}, timeout=30) as b:
        text = "Only my own cache knows that I said this."
        # In flight together: each scope synthesizes its own, neither follows the other.
        mine, theirs = a.post("/v1/jobs", json={"text": text}).json(), b.post("/v1/jobs", json={"text": text}).json()
        assert mine["content_key"] != theirs["content_key"]
        for client, job in ((a, mine), (b, theirs)):
            assert wait_final(client, job["id"])["status"] == "succeeded"
        with db.session() as s:
            runs = s.execute(
                select(Job.tenant_id, func.count(Attempt.id))
                .join(Attempt)
                .where(Job.text == text)
                .group_by(Job.tenant_id)
            ).all()
        assert sorted(runs) == sorted([(private, 1), ("tenant-b", 1)])

        # Each tenant's repeat hits its own audio; another shared tenant hits the shared audio.
        for client, owner in ((a, mine), (b, theirs), (c, theirs)):
            hit = client.post("/v1/jobs", json={"text": text}).json()
            assert hit["cache"] == "hit" and hit["content_key"] == owner["content_key"]

        # Other formats convert from a master of the same scope only.
        said = "Converted from my own master only."
        assert wait_final(a, a.post("/v1/jobs", json={"text": said}).json()["id"])["status"] == "succeeded"
        elsewhere = b.post("/v1/jobs", json={"text": said, "format": "mp3"})
        assert elsewhere.status_code == 202 and elsewhere.json()["cache"] == "miss"
        converted = a.post("/v1/jobs", json={"text": said, "format": "mp3"})
        assert converted.status_code == 200 and converted.json()["cache"] == "hit"
        assert wait_final(b, elsewhere.json()["id"])["status"] == "succeeded"
