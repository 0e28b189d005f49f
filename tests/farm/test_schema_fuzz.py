"""Schemathesis against the live farm: every operation of its OpenAPI schema, with a valid key, for
a time budget. Schema-valid requests must be accepted, schema-violating ones refused with a 4xx,
and nothing may answer a 5xx: the schema says what the API takes, no more and no less.

The fuzzer is an admin of a tenant of its own, so one key reaches every operation, and what it
deletes (its voices) is its own; clearing the farm's cache costs the other tests nothing.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import schemathesis

# schemathesis imports its transports on first use, from each of its worker threads at once, and a
# thread could find one half made ("cannot import name 'WSGI_TRANSPORT'"): made here, before them.
import schemathesis.transport.asgi
import schemathesis.transport.requests
import schemathesis.transport.wsgi
from schemathesis.engine import events, from_schema
from schemathesis.generation import GenerationMode
from sqlalchemy import func, select

from tests.farm.conftest import LOGS
from tests.farm.test_batches import Receiver
from voicefarm.ops.supervisor import Farm
from voicefarm.settings import get_settings
from voicefarm.store import db
from voicefarm.store.models import ACTIVE, Alignment, Attempt, Job, JobStatus, Outcome
from voicefarm.tenancy.auth import create_key

FUZZ_SECONDS = 60
DRAIN_SECONDS = 300
LANGUAGES = [None, "en", "en-US", "en-GB"]  # every voice offered below speaks English
# CPython 3.11.7's ast is not thread-safe (python/cpython#106905, fixed in 3.11.8): Hypothesis in
# schemathesis's worker threads can trip it. It is the fuzzer's interpreter failing, not the farm.
HARNESS_BUG = "AST constructor recursion depth mismatch"
CHECKS = ["not_a_server_error", "negative_data_rejection", "positive_data_acceptance"]
# Fault tiers (conftest VOICEFARM_TIERS) whose first engine fails after its audio began: `stutters`
# mid-stream, `silent` at the quality gate once its audio is whole. A listener's stream is cut
# short then, as documented, which a fuzzer can only read as a broken connection (and, after two,
# schemathesis waits only a second for the operation). Positive cases speak in Piper's tier.
CUT_SHORT = {"stuttering", "quiet"}
# A real engine's audio can fail the quality gate too once its stream began (the tiny StyleTTS2
# speaks a text of symbols in a token or two, too short for its length): cut short as above. Such
# a broken connection is the farm's documented answer when the API logged the failure that cut it.
CUT = "Connection broken"
LATE_FAILURE = re.compile(r"^voicefarm\.errors\.StreamBroken: .* failed after its audio began", re.M)


def harness_bug(event: events.NonFatalError) -> bool:
    """Whether the error is that bug alone: itself, or a flaky result whose every failure it was
    (Hypothesis reports a case that failed on the bug once and passed when run again as flaky)."""
    if HARNESS_BUG in event.info.message:
        return True
    seen = event.value.exceptions if isinstance(event.value, BaseExceptionGroup) else ()
    return bool(seen) and all(HARNESS_BUG in str(e) for e in seen)


def uncut(body: dict[str, Any], field: str) -> None:
    if body.get(field) in CUT_SHORT:
        body[field] = "fast"


@pytest.fixture(scope="module")
def fuzz_key() -> str:
    with db.session() as s:
        return create_key(s, "fuzz", name="schemathesis", admin=True)


class FarmData:
    """What a schema cannot say, for schema-valid cases: which voices exist (and which languages
    they speak), where a callback may go, what a voice sample sounds like. Each positive case takes
    these from the farm; everything else in it is generated. Only built-in voices: the fuzzer may
    delete any cloned one (its stateful phase speaks with the voices it uploads itself)."""

    def __init__(self, http: httpx.Client, sample: bytes) -> None:
        voices = http.get("/v1/voices").json()
        self.voices = [v["id"] for v in voices if not v["cloned"] and v["language"].startswith("en")]
        self.sample = sample
        self.receiver = Receiver()  # stays up: a callback may still be on its way after the test
        self.rng = random.Random(0)

    def speakable(self, item: dict[str, Any]) -> None:
        item["voice"] = self.rng.choice(self.voices)
        uncut(item, "quality")
        self.language(item)

    def language(self, item: dict[str, Any]) -> None:
        language = self.rng.choice(LANGUAGES)
        if language is None:
            item.pop("language", None)
        else:
            item["language"] = language

    def callback(self, body: dict[str, Any]) -> None:
        if self.rng.random() < 0.5:
            body["callback_url"] = self.receiver.url
        else:
            body.pop("callback_url", None)

    def apply(self, operation: str, body: dict[str, Any]) -> None:
        if operation == "POST /v1/jobs":
            self.speakable(body)
            self.callback(body)
        elif operation == "POST /v1/batches":
            for item in body.get("items") or []:
                self.speakable(item)
            if body.get("voices"):
                body["voices"] = [self.rng.choice(self.voices) for _ in body["voices"]]
            uncut(body, "quality")
            self.language(body)
            self.callback(body)
        elif operation == "POST /v1/audio/speech":
            voice = self.rng.choice(self.voices)
            body["voice"] = {"id": voice} if isinstance(body["voice"], dict) else voice
            uncut(body, "model")
        elif operation in ("POST /v1/voices", "PATCH /v1/voices/{voice_id}"):
            if "fallback_voice" in body:
                body["fallback_voice"] = self.rng.choice(self.voices)
            if "file" in body:
                body["file"] = self.sample


def fuzz_config(key: str) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "max-time": FUZZ_SECONDS,
            "headers": {"X-API-Key": key},
            # POST /v1/audio/speech waits for its synthesis: up to openai_wait_seconds, then a 504.
            # Meanwhile the other workers go on with the other operations.
            "request-timeout": get_settings().openai_wait_seconds + 30,
            "workers": 4,
            "checks": {
                "enabled": False,
                "not_a_server_error": {"enabled": True},
                "negative_data_rejection": {"enabled": True},
                # 404 and 409: an id that does not exist or audio not ready; 429: an admission
                # limit, which a valid request may meet. 5xx is not_a_server_error's to judge.
                "positive_data_acceptance": {
                    "enabled": True,
                    "expected-statuses": ["2xx", "3xx", "404", "409", "429", "5xx"],
                },
            },
            "operations": [
                {
                    # It answers with the audio, so it waits for its job: a job that failed on
                    # every engine (a fault tier) is its documented 502, one still running after
                    # openai_wait_seconds its 504.
                    "include-path": "/v1/audio/speech",
                    "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "502", "504"]}},
                },
            ],
        }
    )


def tracebacks(log: Path) -> list[str]:
    """The API log's tracebacks, each up to the line that names its exception."""
    found = re.findall(r"^Traceback \(most recent call last\):\n(?:[ \t].*\n)+\S.*$", log.read_text(), re.M)
    return found[-5:]


def unaligned(tenant: str) -> list[str]:
    """The tenant's succeeded jobs that asked for timestamps, still offer their audio, and whose
    speech is not aligned yet. A job whose audio the fuzzer's DELETE /v1/cache purged lost its
    timestamps with it, for good, even when a later job without timestamps made the same speech
    again (its /timestamps then says they were deleted)."""
    with db.session() as s:
        done = s.scalars(
            select(Job).where(
                Job.tenant_id == tenant,
                Job.timestamps,
                Job.status == JobStatus.succeeded.value,
                Job.object_key.is_not(None),
            )
        )
        sources = {job.id: job.link.source for job in done}
        aligned = set(s.scalars(select(Alignment.source_key).where(Alignment.source_key.in_(sources.values()))))
    return [job_id for job_id, source in sources.items() if source not in aligned]


def wait_drained(tenant: str) -> float:
    """Seconds until the tenant has no job queued or running and every alignment its jobs asked
    for is made: the next test gets an idle farm, its one aligner included (a later test's
    captions would otherwise wait behind the fuzz's alignments)."""
    start = time.monotonic()
    while True:
        with db.session() as s:
            active = s.scalar(select(func.count(Job.id)).where(Job.tenant_id == tenant, Job.status.in_(ACTIVE)))
        waiting = [] if active else unaligned(tenant)
        if not active and not waiting:
            return time.monotonic() - start
        assert time.monotonic() - start < DRAIN_SECONDS, (
            f"after {DRAIN_SECONDS} s, {active} fuzz jobs still active, {len(waiting)} not aligned: {waiting[:5]}"
        )
        time.sleep(1)


# Random quality values pick the test farm's fault tiers too (conftest VOICEFARM_TIERS), whose
# engines fail attempts on purpose; the session's audit of failed attempts must expect them.
@pytest.mark.fault_injection
def test_schemathesis_finds_no_failure_in_any_operation(farm: Farm, fuzz_key: str, speech_wav: bytes) -> None:
    with httpx.Client(base_url=farm.url, headers={"X-API-Key": fuzz_key}, timeout=30) as http:
        data = FarmData(http, speech_wav)
    schema = schemathesis.openapi.from_url(f"{farm.url}/openapi.json", config=fuzz_config(fuzz_key))

    @schema.hook
    def map_case(_: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
        positive = case.meta is not None and case.meta.generation.mode is GenerationMode.POSITIVE
        if positive and isinstance(case.body, dict):
            data.apply(f"{case.method} {case.operation.path}", case.body)
        return case

    api_log = LOGS / "api.log"
    logged_before = api_log.stat().st_size
    cases: Counter[str] = Counter()
    answered: dict[str, set[int]] = {}
    failures: list[str] = []
    ran = 0.0
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            cases[event.recorder.label] += len(event.recorder.cases)
            for interaction in event.recorder.interactions.values():
                if interaction.response is not None:
                    answered.setdefault(event.recorder.label, set()).add(interaction.response.status_code)
            failures += [
                f"{event.recorder.label} {check.name}: {check.failure_info.failure.title}\n"
                f"{check.failure_info.code_sample}"
                for checks in event.recorder.checks.values()
                for check in checks
                if check.failure_info is not None
            ]
        elif isinstance(event, events.NonFatalError) and not harness_bug(event):
            # A flaky failure holds the failures Hypothesis saw first: name them, not only the flake.
            seen = event.value.exceptions if isinstance(event.value, BaseExceptionGroup) else ()
            failures.append("\n".join([f"{event.label}: {event.info.message}", *map(str, seen)]))
        elif isinstance(event, events.FatalError):
            raise event.exception
        elif isinstance(event, events.EngineFinished):
            ran = event.running_time
    drained = wait_drained("fuzz")
    late = len(LATE_FAILURE.findall(api_log.read_bytes()[logged_before:].decode(errors="replace")))
    cuts = [failure for failure in failures if CUT in failure]
    if len(cuts) <= late:
        failures = [failure for failure in failures if CUT not in failure]
    with db.session() as s:
        jobs = s.scalar(select(func.count(Job.id)).where(Job.tenant_id == "fuzz"))
        failed = s.execute(
            select(Attempt.engine, func.count())
            .join(Job)
            .where(Job.tenant_id == "fuzz", Attempt.outcome == Outcome.failed)
            .group_by(Attempt.engine)
        ).all()

    print(f"\nschemathesis: {sum(cases.values())} cases in {ran:.0f} s, {len(failures)} failures")
    print(f"  {jobs} jobs made, all finished and aligned {drained:.0f} s after the run")
    print(f"  failed attempts by engine: {dict(failed)}")  # fault tiers' engines fail on purpose
    print(f"  streams cut short by an engine failing after its audio began: {len(cuts)} ({late} logged)")
    for label, count in sorted(cases.items()):
        print(f"  {count:6d}  {label}  {sorted(answered.get(label, ()))}")
    assert ran >= FUZZ_SECONDS
    # A server error's cause is in the API's log: show it with the failure.
    assert not failures, "\n\n".join([*dict.fromkeys(failures), *tracebacks(api_log)])
    # Every operation was reached with the key, not stopped at the door (401, 403) or by a limit.
    operations = {op.label for op in (result.ok() for result in schema.get_all_operations())}
    assert operations <= cases.keys(), operations - cases.keys()
    stopped = {label for label, statuses in answered.items() if statuses <= {401, 403, 429}}
    assert not stopped, stopped


def path_operations(farm: Farm) -> list[tuple[str, str]]:
    doc = httpx.get(f"{farm.url}/openapi.json").json()
    return [(method.upper(), path) for path, item in doc["paths"].items() if "{" in path for method in item]


@pytest.mark.parametrize("value", ["..\x00.wav", "\x00", "a\x1bb", "x\x7f"])
def test_a_control_character_in_any_path_parameter_is_a_400(farm: Farm, fuzz_key: str, value: str) -> None:
    """The path parameters of every operation, on PostgreSQL (where a NUL was a 500)."""
    for method, path in path_operations(farm):
        url = path.replace(path[path.index("{") : path.index("}") + 1], quote(value, safe=""))
        r = httpx.request(method, farm.url + url, headers={"X-API-Key": fuzz_key})
        assert r.status_code == 400, (method, path, r.text)
        assert r.json()["error"] == "the request's path contains a control character"
