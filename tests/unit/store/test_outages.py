"""Outages of the farm's own servers are told apart from other errors, and ridden out."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis
from botocore.exceptions import ClientError, EndpointConnectionError
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import IntegrityError, OperationalError

from voicefarm.errors import Unavailable
from voicefarm.store.outages import best_effort, is_outage, ride_out

OUTAGES = [
    redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
    redis.TimeoutError("Timeout reading from socket"),
    OperationalError("SELECT 1", {}, Exception("connection to server at 127.0.0.1, port 5432 failed")),
    EndpointConnectionError(endpoint_url="http://127.0.0.1:9000/bucket/key"),
    BrokerError("[Errno 111] Connection refused"),
    Unavailable("broker unavailable"),
]
NOT_OUTAGES = [
    ValueError("no such voice"),
    IntegrityError("INSERT", {}, Exception("duplicate key")),
    ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "PutObject"),
    redis.ResponseError("WRONGTYPE"),
]


@pytest.mark.parametrize("error", OUTAGES, ids=lambda e: type(e).__name__)
def test_unreachable_servers_are_outages(error: Exception) -> None:
    assert is_outage(error)


@pytest.mark.parametrize("error", NOT_OUTAGES, ids=lambda e: type(e).__name__)
def test_errors_of_the_work_itself_are_not(error: Exception) -> None:
    assert not is_outage(error)


def flaky(errors: list[Exception], result: str = "stored") -> tuple[list[float], Callable[[], str]]:
    """A step that raises `errors` one call each, then returns `result`; and when it was called."""
    calls: list[float] = []

    def step() -> str:
        calls.append(time.monotonic())
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return result

    return calls, step


def test_a_step_is_tried_again_until_its_server_is_back() -> None:
    calls, step = flaky([redis.ConnectionError("down"), EndpointConnectionError(endpoint_url="http://s3")])
    assert ride_out(step, "storing", limit=10) == "stored"
    assert len(calls) == 3 and calls[1] > calls[0] and calls[2] - calls[1] >= calls[1] - calls[0]  # backoff


def test_an_outage_past_the_limit_is_unavailable_naming_the_step() -> None:
    calls, step = flaky([redis.ConnectionError("down")] * 1000)
    with pytest.raises(Unavailable, match=r"storing audio/x\.wav: still unreachable after 0\.5 s: ConnectionError"):
        ride_out(step, "storing audio/x.wav", limit=0.5)
    assert len(calls) > 1


def test_any_other_error_is_raised_at_once() -> None:
    calls, step = flaky([ValueError("bad input")])
    with pytest.raises(ValueError, match="bad input"):
        ride_out(step, "storing", limit=10)
    assert len(calls) == 1


def test_best_effort_skips_a_step_its_server_cannot_take_and_says_so() -> None:
    calls, step = flaky([redis.ConnectionError("down")])
    assert best_effort(step, "the live feed") is False
    assert best_effort(step, "the live feed") is True
    assert len(calls) == 2  # once each: nothing waits on a feed
    with pytest.raises(ValueError):
        best_effort(flaky([ValueError("bug")])[1], "the live feed")
