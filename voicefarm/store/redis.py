"""Redis clients that outlive a Redis restart: the one way the farm connects to Redis.

Each is shared: one pooled client per URL and socket timeout (sync and asyncio apart), however
many parts of the farm (the URL cache, admission's windows, the live feeds, the broker's
inspection) speak to that Redis, so a process's Redis connections have one home.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry

# A restarted Redis leaves dead sockets in the pool: reconnect and retry rather than fail.
RECONNECT: dict[str, Any] = {"socket_connect_timeout": 2, "retry_on_error": [ConnectionError, TimeoutError]}


@cache
def connect(url: str, socket_timeout: float = 2) -> Redis:
    """The shared client for `url`, which outlives a Redis restart."""
    return Redis.from_url(url, retry=Retry(ExponentialBackoff(cap=0.5), 3), socket_timeout=socket_timeout, **RECONNECT)


@cache
def aconnect(url: str, socket_timeout: float = 2) -> AsyncRedis:
    """The shared asyncio client, likewise."""
    retry = AsyncRetry(ExponentialBackoff(cap=0.5), 3)
    return AsyncRedis.from_url(url, retry=retry, socket_timeout=socket_timeout, **RECONNECT)
