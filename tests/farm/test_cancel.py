"""Cancel on a whole farm: a real worker stops a running job at its next piece and takes its next
job, a queued job never runs, listeners' streams end, callbacks say `job.canceled`; through the
API, the SDK and the CLI. The `endless` test engine streams until something stops it."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.farm.conftest import more_workers, wait_final
from tests.farm.test_batches import Receiver
from tests.farm.test_recovery import job_of, wait_for
from voicefarm.client import Client
from voicefarm.ops.supervisor import Farm

ENDLESS = {"quality": "endless"}  # endless first, then Piper
# Well under the endless engine's soft time limit (60 s, conftest): a job that waits this long at
# most ran after a run that a cancel stopped, not after one that its time limit ended.
FREED_WITHIN = 30.0


@pytest.fixture(scope="module")
def endless_worker() -> Iterator[None]:
    with more_workers("endless", 1, 1):
        yield


def steps(job: dict) -> list[tuple[str, str]]:
    return [(a["engine"], a["outcome"]) for a in job["attempts"]]


def test_a_running_job_canceled_stops_at_its_next_piece_and_a_queued_one_never_runs(
    farm: Farm, http: httpx.Client, api_key: str, endless_worker: None
) -> None:
    receiver = Receiver()
    running = http.post("/v1/jobs", json={"text": "Endless speech that only a cancel stops.", **ENDLESS}).json()
    with http.stream("GET", f"/v1/jobs/{running['id']}/stream", params={"format": "pcm"}) as stream:
        chunks = stream.iter_bytes()
        assert next(chunks)  # it runs, and its audio flows
        queued = http.post(
            "/v1/jobs", json={"text": "Endless, and queued behind it.", **ENDLESS, "callback_url": receiver.url}
        ).json()
        assert job_of(http, queued["id"])["status"] == "queued"  # the engine's one slot is taken

        cli = subprocess.run(
            ["voicefarm", "cancel", queued["id"]],
            env={**os.environ, "VOICEFARM_URL": farm.url, "VOICEFARM_API_KEY": api_key},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0 and f"job {queued['id']}: canceled" in cli.stdout, cli.stdout + cli.stderr
        with Client(farm.url, api_key) as client:
            assert client.cancel(running["id"]).status == "canceled"
        with pytest.raises(httpx.RemoteProtocolError):  # cut before its end: it never finished
            for _ in chunks:
                pass

    after = wait_final(
        http, http.post("/v1/jobs", json={"text": "A short one, next.", **ENDLESS}).json()["id"], FREED_WITHIN
    )
    assert after["status"] == "succeeded" and steps(after) == [("endless", "succeeded")]
    stopped, never = job_of(http, running["id"]), job_of(http, queued["id"])
    assert stopped["status"] == "canceled" and steps(stopped) == [("endless", "canceled")]  # no fallback
    assert never["status"] == "canceled" and steps(never) == []  # its message found it canceled

    receiver.wait(1)
    sent = json.loads(receiver.received[0][0])
    assert sent["event"] == "job.canceled" and sent["job"]["id"] == queued["id"] and sent["job"]["status"] == "canceled"
    receiver.server.shutdown()
    # Canceled again, or once ended: the job as it stands, unchanged.
    again = http.post(f"/v1/jobs/{after['id']}/cancel")
    assert again.status_code == 200 and again.json()["status"] == "succeeded"


def test_a_batch_canceled_ends_its_running_job_and_its_queued_ones(http: httpx.Client, endless_worker: None) -> None:
    batch = http.post(
        "/v1/batches", json={"phrases": ["Endless first item.", "Endless second item."], **ENDLESS}
    ).json()
    batch_id = batch["id"]
    wait_for("the batch's first job to run", lambda: http.get(f"/v1/batches/{batch_id}").json()["counts"]["running"])

    out = http.post(f"/v1/batches/{batch_id}/cancel").json()

    assert out["status"] == "done" and out["counts"]["canceled"] == 2 and out["progress"] == 1.0
    after = wait_final(
        http, http.post("/v1/jobs", json={"text": "After the batch.", **ENDLESS}).json()["id"], FREED_WITHIN
    )
    assert after["status"] == "succeeded" and steps(after) == [("endless", "succeeded")]


def test_a_cancel_of_a_job_that_is_not_the_callers_is_a_404(http: httpx.Client, other_key: str) -> None:
    mine = http.post("/v1/jobs", json={"text": "Mine to cancel, nobody else's."}).json()
    theirs = http.post(f"/v1/jobs/{mine['id']}/cancel", headers={"X-API-Key": other_key})
    assert theirs.status_code == 404 and mine["id"] in theirs.json()["error"]
    assert http.post("/v1/jobs/no-such-job/cancel").status_code == 404
    assert http.post("/v1/batches/no-such-batch/cancel").status_code == 404
    assert wait_final(http, mine["id"])["status"] == "succeeded"
