"""Outages of the farm's own servers (the database, Redis, the object store, the broker), told
apart from everything else that can go wrong, and ridden out.

A job must not pay for an outage: an attempt that cannot reach PostgreSQL for a few seconds has
not shown its engine broken, so it waits and tries the same step again rather than count against
the breaker and move the job down its chain.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_delay, wait_exponential

from voicefarm.errors import Unavailable
from voicefarm.settings import get_settings

log = logging.getLogger(__name__)

T = TypeVar("T")


def is_outage(error: BaseException) -> bool:
    """Whether `error` says one of the farm's servers could not be reached, rather than that
    the work itself went wrong."""
    if isinstance(error, Unavailable | RedisConnectionError | RedisTimeoutError | InterfaceError | OperationalError):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    # Only modules already imported can have raised: the S3 client and the broker are loaded
    # where they are used, and an SDK-only install has neither.
    botocore = sys.modules.get("botocore.exceptions")
    if botocore is not None and isinstance(error, botocore.HTTPClientError | botocore.ConnectionError):
        return True
    kombu = sys.modules.get("kombu.exceptions")
    return kombu is not None and isinstance(error, kombu.OperationalError)


def ride_out(step: Callable[[], T], what: str, limit: float | None = None) -> T:
    """`step()`, tried again with backoff for as long as it fails on an outage, up to `limit`
    seconds (`outage_limit_seconds`); then Unavailable. Any other error is raised at once.
    `what` names the step in the log."""
    limit = get_settings().outage_limit_seconds if limit is None else limit

    def waiting(state: RetryCallState) -> None:
        assert state.outcome is not None and state.next_action is not None
        log.warning("%s: %r; trying again in %.1f s", what, state.outcome.exception(), state.next_action.sleep)

    retrying = Retrying(
        retry=retry_if_exception(is_outage),
        wait=wait_exponential(multiplier=0.1, max=2),
        stop=stop_after_delay(limit),
        before_sleep=waiting,
        reraise=True,
    )
    try:
        return retrying(step)
    except Exception as e:
        if is_outage(e) and not isinstance(e, Unavailable):
            raise Unavailable(f"{what}: still unreachable after {limit:g} s: {type(e).__name__}: {e}") from e
        raise


def best_effort(step: Callable[[], object], what: str) -> bool:
    """`step()` once, for what may be lost in an outage (a live feed's piece, a cache entry):
    False, and a warning, when its server is down. Other errors are raised."""
    try:
        step()
    except Exception as e:
        if not is_outage(e):
            raise
        log.warning("%s skipped: %r", what, e)
        return False
    return True
