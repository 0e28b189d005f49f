"""One error tree: the API maps each class to its status, and the SDK maps statuses back."""

from __future__ import annotations

import httpx
import pytest

from voicefarm import errors
from voicefarm.api.app import STATUS, status_of
from voicefarm.client import error_from


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.InvalidRequest, 422),
        (errors.SampleRejected, 422),
        (errors.SampleTooLarge, 413),
        (errors.UnreadableSample, 415),
        (errors.Unauthorized, 401),
        (errors.Forbidden, 403),
        (errors.NotFound, 404),
        (errors.NotReady, 409),
        (errors.JobFailed, 409),  # the SDK reads a stream's 409 as JobFailed once the job says it failed
        (errors.TooManyRequests, 429),
        (errors.Unavailable, 503),
    ],
)
def test_each_error_has_one_status_and_the_sdk_maps_it_back(error: type[errors.VoicefarmError], status: int) -> None:
    assert status_of(error("why")) == status
    back = error_from(httpx.Response(status, json={"error": "why"}))
    assert isinstance(back, errors.VoicefarmError) and back.status == status and back.message == "why"
    assert status_of(back) == status  # the same class again, or its nearest mapped ancestor


def test_errors_that_never_reach_http_have_no_status() -> None:
    assert not {errors.AudioRejected, errors.StreamBroken} & set(STATUS)
