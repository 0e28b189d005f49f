"""Admission limits and cache scopes, in process: what a refusal says, that it keeps and enqueues
nothing, that a request not accepted does not count, that the next window admits again, and that
the `voicefarm tenants` commands set what the API applies. The windows' clock is moved here, not
waited for; tests/farm/test_admission.py checks the same against Redis and real workers."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from voicefarm.settings import get_settings
from voicefarm.store import db
from voicefarm.store.models import Batch, Job, Tenant
from voicefarm.telemetry import stats
from voicefarm.tenancy import admission
from voicefarm.tenancy.auth import create_key

NOON = 1_800_000_000.0 - 1_800_000_000.0 % 86_400 + 12 * 3600  # a UTC noon, on the minute


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The windows' clock, fixed at NOON; a test moves it by changing now[0]."""
    now = [NOON]
    monkeypatch.setattr("voicefarm.tenancy.windows.base.clock", lambda: now[0])
    yield now


def tenant(app: TestClient, **overrides: int | str) -> tuple[str, TestClient]:
    """A new tenant with these overrides, and a client with its key."""
    name = f"adm-{secrets.token_hex(4)}"
    with db.session() as s:
        key = create_key(s, name, name="tests")
        s.flush()
        admission.override(s, name, dict(overrides))
    return name, TestClient(app.app, headers={"X-API-Key": key})


def tenants(*args: str) -> subprocess.CompletedProcess[str]:
    """`voicefarm tenants ...`, on this tier's database, in a terminal wide enough not to wrap."""
    command = [sys.executable, "-m", "voicefarm", "tenants", *args]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})


def lines(output: str) -> list[str]:
    return [" ".join(line.split()) for line in output.splitlines()]


def queued() -> int:
    return stats.queue_depths(get_settings())["piper"]


def jobs_of(name: str) -> int:
    with db.session() as s:
        return s.scalar(select(func.count(Job.id)).where(Job.tenant_id == name)) or 0


def batches_of(name: str) -> int:
    with db.session() as s:
        return s.scalar(select(func.count(Batch.id)).where(Batch.tenant_id == name)) or 0


def refused(r, message: str, retry_after: int) -> None:
    assert r.status_code == 429, r.text
    assert r.json()["error"] == message
    assert r.headers["retry-after"] == str(retry_after)


def test_over_submissions_per_minute_every_endpoint_is_refused_until_the_next_minute(
    app: TestClient, clock: list[float]
) -> None:
    name, http = tenant(app, submissions_per_minute=3)
    clock[0] = NOON + 45  # 15 s before the minute ends
    assert http.post("/v1/jobs", json={"text": "First of the minute."}).status_code == 202
    batch = http.post("/v1/batches", json={"phrases": ["Second of the minute.", "Third of the minute."]})
    assert batch.status_code == 202, batch.text
    before = queued()

    message = (
        f"{name} is over its limit of 3 submissions per minute: 3 this minute, this request asks for {{n}} "
        "(VOICEFARM_SUBMISSIONS_PER_MINUTE or voicefarm tenants set --submissions-per-minute)"
    )
    refused(http.post("/v1/jobs", json={"text": "One too many."}), message.format(n=1), 15)
    refused(http.post("/v1/batches", json={"phrases": ["One.", "Two."]}), message.format(n=2), 15)
    speech = http.post("/v1/audio/speech", json={"model": "tts-1", "input": "One too many.", "voice": "alloy"})
    assert speech.status_code == 429 and speech.headers["retry-after"] == "15"
    assert speech.json()["error"]["message"] == message.format(n=1)  # in OpenAI's shape
    assert queued() == before and jobs_of(name) == 3 and batches_of(name) == 1

    clock[0] = NOON + 60  # the next minute
    assert http.post("/v1/jobs", json={"text": "One too many."}).status_code == 202


def test_over_characters_per_day_batches_count_every_item_and_the_next_day_admits(
    app: TestClient, clock: list[float]
) -> None:
    name, http = tenant(app, chars_per_day=30)
    assert http.post("/v1/batches", json={"phrases": ["Ten chars.", "Ten again."]}).status_code == 202
    before = queued()
    refused(
        http.post("/v1/batches", json={"phrases": ["Six...", "Six!!!"]}),
        f"{name} is over its limit of 30 characters per day: 20 today (UTC), this request asks for 12 "
        "(VOICEFARM_CHARS_PER_DAY or voicefarm tenants set --chars-per-day)",
        12 * 3600,
    )
    assert queued() == before and batches_of(name) == 1 and jobs_of(name) == 2
    # What the refused batch asked for was not counted: ten more characters still fit today.
    assert http.post("/v1/jobs", json={"text": "Ten chars!"}).status_code == 202
    assert http.post("/v1/jobs", json={"text": "a"}).status_code == 429

    clock[0] = NOON + 12 * 3600  # midnight, UTC: a new day
    assert http.post("/v1/jobs", json={"text": "A new day."}).status_code == 202


def test_a_document_is_one_job_counted_by_its_characters(app: TestClient, clock: list[float]) -> None:
    document = "\n\n".join([("A paragraph of a long document, which is said in full. " * 18).strip()] * 3)
    assert len(document) > get_settings().segment_chars
    name, http = tenant(app, chars_per_day=len(document) + 5)
    r = http.post("/v1/jobs", json={"text": document})
    assert r.status_code == 202 and r.json()["segments"] == {"total": 3, "done": 0, "cached": 0, "attempts": 0}
    assert jobs_of(name) == 1
    refused(
        http.post("/v1/jobs", json={"text": "Too many."}),
        f"{name} is over its limit of {len(document) + 5} characters per day: {len(document)} today (UTC), "
        "this request asks for 9 (VOICEFARM_CHARS_PER_DAY or voicefarm tenants set --chars-per-day)",
        12 * 3600,
    )


def test_over_active_jobs_is_refused_until_one_finishes_and_a_refusal_does_not_count(
    app: TestClient, clock: list[float]
) -> None:
    name, http = tenant(app, max_active_jobs=2, submissions_per_minute=3)
    ids = [http.post("/v1/jobs", json={"text": f"Active job {i}."}).json()["id"] for i in range(2)]
    before = queued()
    message = (
        f"{name} is over its limit of 2 queued and running jobs: 2 now, this request adds {{n}} "
        "(VOICEFARM_MAX_ACTIVE_JOBS or voicefarm tenants set --max-active-jobs)"
    )
    refused(http.post("/v1/jobs", json={"text": "Waits its turn."}), message.format(n=1), 5)
    refused(http.post("/v1/batches", json={"phrases": ["Waits its turn."]}), message.format(n=1), 5)
    assert queued() == before and jobs_of(name) == 2 and batches_of(name) == 0

    with db.session() as s:  # a worker finishes one
        s.execute(update(Job).where(Job.id == ids[0]).values(status="succeeded"))
    # The third submission of the minute: the two refused ones were given back.
    assert http.post("/v1/jobs", json={"text": "Waits its turn."}).status_code == 202


def test_a_private_cache_and_its_dedupe_are_the_tenants_own(app: TestClient, clock: list[float]) -> None:
    _, a = tenant(app, cache_scope="private")
    _, b = tenant(app, cache_scope="private")
    _, shared = tenant(app)
    _, shared_too = tenant(app, cache_scope="shared")
    body = {"text": "Said by several tenants at once."}
    before = queued()
    jobs = [client.post("/v1/jobs", json=body).json() for client in (a, b, shared, shared_too)]
    keys = [job["content_key"] for job in jobs]
    assert len(set(keys[:3])) == 3 and keys[2] == keys[3]
    # Each private tenant synthesizes its own; the shared tenants share one synthesis.
    assert queued() == before + 3
    with db.session() as s:
        leaders = dict(s.execute(select(Job.id, Job.leader_id).where(Job.id.in_([j["id"] for j in jobs]))).all())
    assert [leaders[j["id"]] for j in jobs] == [None, None, None, jobs[2]["id"]]


def test_tenants_set_and_show_from_the_command_line(app: TestClient, clock: list[float]) -> None:
    name, http = tenant(app)
    settings = get_settings()
    done = tenants("set", name, "--submissions-per-minute", "1", "--chars-per-day", "500", "--cache", "private")
    assert done.returncode == 0, done.stderr
    assert lines(done.stdout) == [
        f"tenant {name}",
        f"max active jobs {settings.max_active_jobs} (farm default, VOICEFARM_MAX_ACTIVE_JOBS)",
        "submissions per minute 1 (set for this tenant)",
        "chars per day 500 (set for this tenant)",
        "cache scope private (set for this tenant)",
        "active jobs now 0",
    ]

    # The API reads the tenant's row when it first serves the tenant: the overrides apply.
    first = http.post("/v1/jobs", json={"text": "Set from the command line."})
    assert first.status_code == 202
    assert http.post("/v1/jobs", json={"text": "Over the command line's limit."}).status_code == 429
    _, shared = tenant(app)  # the same request keyed in the farm's shared cache: another key
    again = shared.post("/v1/jobs", json={"text": "Set from the command line."})
    assert again.json()["content_key"] != first.json()["content_key"]

    assert tenants("set", name, "--submissions-per-minute", "default", "--cache", "default").returncode == 0
    shown = lines(tenants("show", name).stdout)
    default = settings.submissions_per_minute
    assert shown[2] == f"submissions per minute {default} (farm default, VOICEFARM_SUBMISSIONS_PER_MINUTE)"
    assert shown[4:] == ["cache scope shared (farm default, VOICEFARM_CACHE_SCOPE)", "active jobs now 1"]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["set", "nobody", "--chars-per-day", "5"], "no tenant 'nobody'"),
        (["set", "{tenant}", "--max-active-jobs", "0"], "'0': give a whole number of at least 1, or 'default'"),
        (["set", "{tenant}", "--chars-per-day", "lots"], "'lots': give a whole number of at least 1, or 'default'"),
        (["set", "{tenant}", "--cache", "secret"], "cache_scope must be one of shared, private, not 'secret'"),
        (["show", "nobody"], "no tenant 'nobody'"),
    ],
)
def test_tenants_refuses_bad_values_and_unknown_tenants(app: TestClient, args: list[str], error: str) -> None:
    name, _ = tenant(app)
    done = tenants(*(a.format(tenant=name) for a in args))
    output = done.stdout + done.stderr
    assert done.returncode != 0 and error in output, output
    with db.session() as s:
        row = s.get(Tenant, name)
        assert row is not None
        assert [getattr(row, limit) for limit in (*admission.LIMITS, "cache_scope")] == [None] * 4
