"""Admission: whether a tenant may submit more, decided before anything of the request is stored.

Each limit is a farm setting that a tenant's row may override (`voicefarm tenants set`):

- `max_active_jobs`, the tenant's queued plus running jobs: counted in the database just before
  a job row is written, through a partial index that holds only active jobs and at most
  `limit` rows of it, so the count never grows with history. A cache hit makes no job and is
  never refused by it. Submissions running at the same moment can overshoot it by their number.
- `submissions_per_minute` and `chars_per_day`: fixed windows (UTC minutes and days). With Redis
  they are counted there, under the farm's prefix, in one round trip that checks both and counts
  the request only if both have room, so every API process shares them; without Redis (the
  embedded farm, one API process) they are counted in this process.

Characters are those the tenant asks to synthesize, cache hits included: so a tenant can plan its
quota whatever other tenants did (one that spared hits would also tell a tenant whether someone
else had had the same text synthesized), and the count is known before the cache is looked at.
A request refused or failed after it was counted gives its share back.

The tenant's cache scope is decided here too: a private scope puts the tenant and its secret salt
into its keys (`voicefarm.jobs.keys`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from voicefarm.errors import InvalidRequest, NotFound, TooManyRequests
from voicefarm.library.cache import get_cache
from voicefarm.settings import Settings
from voicefarm.store.models import IS_ACTIVE, Job, Tenant

# Each limit, and how a refusal names it.
LIMITS = {
    "max_active_jobs": "queued and running jobs",
    "submissions_per_minute": "submissions per minute",
    "chars_per_day": "characters per day",
}
SCOPES = ("shared", "private")
MINUTE, DAY = 60, 86_400
# An active job frees its slot when it finishes; a few seconds is how long a short job takes.
ACTIVE_RETRY_SECONDS = 5
# How long an API process trusts what it read of a tenant's row: a change (voicefarm tenants
# set) reaches every API process within this.
POLICY_SECONDS = 10.0
clock = time.time  # the windows' wall clock (tests move it)


@dataclass(frozen=True)
class Policy:
    """A tenant's limits and cache scope: its overrides over the farm's settings."""

    tenant_id: str
    max_active_jobs: int
    submissions_per_minute: int
    chars_per_day: int
    cache_scope: str
    cache_salt: str

    @property
    def key_scope(self) -> str | None:
        """What confines the tenant's keys to its own cache; None when it shares the farm's."""
        return f"{self.tenant_id}:{self.cache_salt}" if self.cache_scope == "private" else None


_policies: dict[str, tuple[float, Policy]] = {}


def cached_policy(tenant_id: str) -> Policy | None:
    """The tenant's policy if this process read it within POLICY_SECONDS; None: ask policy()."""
    hit = _policies.get(tenant_id)
    return hit[1] if hit is not None and time.monotonic() - hit[0] < POLICY_SECONDS else None


def policy(session: Session, tenant_id: str, settings: Settings) -> Policy:
    """The tenant's policy, read from its row."""
    row = session.get(Tenant, tenant_id)
    if row is None:
        raise NotFound(f"no tenant {tenant_id!r}")
    found = Policy(
        tenant_id,
        row.max_active_jobs or settings.max_active_jobs,
        row.submissions_per_minute or settings.submissions_per_minute,
        row.chars_per_day or settings.chars_per_day,
        row.cache_scope or settings.cache_scope,
        row.cache_salt,
    )
    _policies[tenant_id] = (time.monotonic(), found)
    return found


def override(session: Session, tenant_id: str, changes: dict[str, int | str | None]) -> None:
    """Set the tenant's overrides named in `changes` (a limit, or `cache_scope`); None clears
    one back to the farm's setting."""
    row = session.get(Tenant, tenant_id)
    if row is None:
        raise NotFound(f"no tenant {tenant_id!r}; `voicefarm keys create --tenant {tenant_id}` creates it")
    for name, value in changes.items():
        if name not in (*LIMITS, "cache_scope"):
            raise InvalidRequest(f"{name!r} is not a tenant setting")
        if name in LIMITS and not (value is None or (isinstance(value, int) and value >= 1)):
            raise InvalidRequest(f"{name} must be a whole number of at least 1, not {value!r}")
        if name == "cache_scope" and value not in (None, *SCOPES):
            raise InvalidRequest(f"cache_scope must be one of {', '.join(SCOPES)}, not {value!r}")
        setattr(row, name, value)


def over(p: Policy, limit: str, detail: str, retry_after: int) -> TooManyRequests:
    """The refusal, naming the limit, its value, and where it is set."""
    return TooManyRequests(
        f"{p.tenant_id} is over its limit of {getattr(p, limit)} {LIMITS[limit]}: {detail} "
        f"(VOICEFARM_{limit.upper()} or voicefarm tenants set --{limit.replace('_', '-')})",
        retry_after=retry_after,
    )


def active_jobs(session: Session, tenant_id: str, limit: int) -> int:
    """The tenant's queued and running jobs, counted up to `limit` (ix_jobs_active_tenant)."""
    active = select(Job.id).where(Job.tenant_id == tenant_id, text(IS_ACTIVE)).limit(limit).subquery()
    return session.scalar(select(func.count()).select_from(active)) or 0


def check_active(session: Session, p: Policy, adding: int) -> None:
    """Refuse `adding` more jobs that would take the tenant over its limit of active jobs."""
    active = active_jobs(session, p.tenant_id, p.max_active_jobs)
    if active + adding > p.max_active_jobs:
        raise over(p, "max_active_jobs", f"{active} now, this request adds {adding}", ACTIVE_RETRY_SECONDS)


@dataclass(frozen=True)
class Grant:
    """What one admitted request counted, in which windows: given back if it is not accepted."""

    tenant_id: str
    minute: int  # the window's index: whole minutes (days) since the epoch
    day: int
    submissions: int
    chars: int


def grant(p: Policy, submissions: int, chars: int, now: float) -> Grant:
    return Grant(p.tenant_id, int(now // MINUTE), int(now // DAY), submissions, chars)


def refusal(p: Policy, g: Grant, now: float, minute_used: int, day_used: int) -> TooManyRequests | None:
    """Why the windows have no room for `g`, given what they hold; None if they have."""
    if minute_used + g.submissions > p.submissions_per_minute:
        detail = f"{minute_used} this minute, this request asks for {g.submissions}"
        return over(p, "submissions_per_minute", detail, math.ceil((g.minute + 1) * MINUTE - now))
    if day_used + g.chars > p.chars_per_day:
        detail = f"{day_used} today (UTC), this request asks for {g.chars}"
        return over(p, "chars_per_day", detail, math.ceil((g.day + 1) * DAY - now))
    return None


class Windows(Protocol):
    """Where the per-minute and per-day windows are counted."""

    async def take(self, p: Policy, submissions: int, chars: int) -> Grant:
        """Count a request in the tenant's windows, or raise TooManyRequests and count nothing."""

    async def give_back(self, g: Grant) -> None:
        """Uncount a request that was counted but not accepted."""


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

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.script = redis.register_script(TAKE)

    def keys(self, g: Grant) -> list[str]:
        base = f"{self.prefix}:admission:{g.tenant_id}"
        return [f"{base}:submissions:{g.minute}", f"{base}:chars:{g.day}"]

    async def take(self, p: Policy, submissions: int, chars: int) -> Grant:
        now = clock()
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


class LocalWindows:
    """Windows in this process, for the embedded farm's single API process. Used from the event
    loop only, so it needs no lock."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, int], int] = {}
        self.minute = 0

    async def take(self, p: Policy, submissions: int, chars: int) -> Grant:
        now = clock()
        g = grant(p, submissions, chars, now)
        if g.minute != self.minute:  # forget windows that have ended
            self.minute = g.minute
            current = {"submissions": g.minute, "chars": g.day}
            self.counts = {k: v for k, v in self.counts.items() if k[2] >= current[k[1]]}
        minute, day = (p.tenant_id, "submissions", g.minute), (p.tenant_id, "chars", g.day)
        error = refusal(p, g, now, self.counts.get(minute, 0), self.counts.get(day, 0))
        if error is not None:
            raise error
        self.counts[minute] = self.counts.get(minute, 0) + submissions
        self.counts[day] = self.counts.get(day, 0) + chars
        return g

    async def give_back(self, g: Grant) -> None:
        for key, n in ((g.tenant_id, "submissions", g.minute), g.submissions), ((g.tenant_id, "chars", g.day), g.chars):
            if key in self.counts:
                self.counts[key] -= n


@lru_cache
def get_windows() -> Windows:
    """Redis's windows where the farm has a Redis (on the URL cache's connections), else local ones."""
    cache = get_cache()
    return RedisWindows(cache.aredis, cache.prefix) if cache.aredis is not None else LocalWindows()
