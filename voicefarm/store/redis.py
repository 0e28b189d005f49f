"""Redis clients that outlive a Redis restart: the one way the farm connects to Redis."""

from __future__ import annotations

from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry

# A restarted Redis leaves dead sockets in the pool: reconnect and retry rather than fail.
RECONNECT: dict[str, Any] = {"socket_connect_timeout": 2, "retry_on_error": [ConnectionError, TimeoutError]}


def connect(url: str, socket_timeout: float = 2) -> Redis:
    """A Redis client that outlives a Redis restart."""
    return Redis.from_url(url, retry=Retry(ExponentialBackoff(cap=0.5), 3), socket_timeout=socket_timeout, **RECONNECT)


def aconnect(url: str, socket_timeout: float = 2) -> AsyncRedis:
    """The asyncio client, likewise."""
    retry = AsyncRetry(ExponentialBackoff(cap=0.5), 3)
    return AsyncRedis.from_url(url, retry=retry, socket_timeout=socket_timeout, **RECONNECT)
