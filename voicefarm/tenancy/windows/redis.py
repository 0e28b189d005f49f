"""Windows counted in Redis, where the farm has one (`redis_url` set)."""

from __future__ import annotations

from redis.asyncio import Redis as AsyncRedis

from voicefarm.tenancy.admission import Policy
from voicefarm.tenancy.windows import base
from voicefarm.tenancy.windows.base import DAY, MINUTE, Grant, grant, refusal

# Checks both windows and counts in both, or in neither, atomically. KEYS: the minute's
# submissions, the day's characters. ARGV: submissions, characters, their limits, the keys'
# lifetimes. Returns 0 and nothing, or 1 and what the windows hold.
TAKE = """
local minute = tonumber(redis.call('GET', KEYS[1]) or 0)
local day = tonumber(redis.call('GET', KEYS[2]) or 0)
if minute + tonumber(ARGV[1]) > tonumber(ARGV[3]) or day + tonumber(ARGV[2]) > tonumber(ARGV[4]) then
  return {1, minute, day}
end
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('INCRBY', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[6])
return {0, 0, 0}
"""


class RedisWindows:
    """Windows in Redis, shared by every API process; each key expires after its window."""

    def __init__(self, redis: AsyncRedis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.script = redis.register_script(TAKE)

    def keys(self, g: Grant) -> list[str]:
        tenant = f"{self.prefix}:admission:{g.tenant_id}"
        return [f"{tenant}:submissions:{g.minute}", f"{tenant}:chars:{g.day}"]

    async def take(self, p: Policy, submissions: int, chars: int) -> Grant:
        now = base.clock()
        g = grant(p, submissions, chars, now)
        args = [submissions, chars, p.submissions_per_minute, p.chars_per_day, 2 * MINUTE, 2 * DAY]
        refused, minute_used, day_used = await self.script(keys=self.keys(g), args=args)
        if refused:
            error = refusal(p, g, now, int(minute_used), int(day_used))
            assert error is not None
            raise error
        return g

    async def give_back(self, g: Grant) -> None:
        minute, day = self.keys(g)
        async with self.redis.pipeline(transaction=False) as pipe:
            # A window that has expired meanwhile comes back negative: it expires again, unread.
            for key, n, ttl in ((minute, g.submissions, 2 * MINUTE), (day, g.chars, 2 * DAY)):
                pipe.decrby(key, n)
                pipe.expire(key, ttl)
            await pipe.execute()
