"""One error tree: the API maps each class to its status, and the SDK maps statuses back."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from voicefarm import errors, quality
from voicefarm.api.app import STATUS, status_of
from voicefarm.client import error_from
from voicefarm.engines.base import Audio


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
    assert not {errors.AudioRejected, errors.JobFailed, errors.StreamBroken} & set(STATUS)


@pytest.mark.parametrize(
    ("samples", "reason"),
    [
        (np.zeros(0, np.float32), "empty audio"),
        (np.full(22050, np.nan, np.float32), "NaN or infinite samples"),
        (np.zeros(22050, np.float32), "silence"),
        (np.ones(22050, np.float32), "clipped throughout"),
        (0.3 * np.sin(np.arange(22050 * 20) / 10).astype(np.float32), "20.00 s is implausible"),
    ],
)
def test_the_quality_gate_refuses_with_a_reason(samples: np.ndarray, reason: str) -> None:
    with pytest.raises(errors.AudioRejected, match=reason):
        quality.check(Audio(samples, 22050), "Twelve chars", 1.0)


def test_the_quality_gate_passes_plausible_audio() -> None:
    quality.check(Audio(0.3 * np.sin(np.arange(22050) / 10).astype(np.float32), 22050), "Twelve chars", 1.0)
