"""Admission: whether a tenant may submit more, decided before anything of the request is stored.

Each limit is a farm setting that a tenant's row may override (`voicefarm tenants set`):

- `max_active_jobs`, the tenant's queued plus running jobs: counted in the database just before
  a job row is written, through a partial index that holds only active jobs and at most
  `limit` rows of it, so the count never grows with history. A cache hit makes no job and is
  never refused by it. Submissions running at the same moment can overshoot it by their number.
- `submissions_per_minute` and `chars_per_day`: fixed windows (UTC minutes and days), counted in
  Redis or in this process (`voicefarm.tenancy.windows`).

Characters are those the tenant asks to synthesize, cache hits included: so a tenant can plan its
quota whatever other tenants did (one that spared hits would also tell a tenant whether someone
else had had the same text synthesized), and the count is known before the cache is looked at.
A request refused or failed after it was counted gives its share back.

The tenant's cache scope is decided here too: a private scope puts the tenant and its secret salt
into its keys (`voicefarm.jobs.keys`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from voicefarm.errors import InvalidRequest, NotFound, TooManyRequests
from voicefarm.settings import Settings
from voicefarm.store.models import IS_ACTIVE, Job, Tenant

# Each limit, and how a refusal names it.
LIMITS = {
    "max_active_jobs": "queued and running jobs",
    "submissions_per_minute": "submissions per minute",
    "chars_per_day": "characters per day",
}
SCOPES = ("shared", "private")
# An active job frees its slot when it finishes; a few seconds is how long a short job takes.
ACTIVE_RETRY_SECONDS = 5
# How long an API process trusts what it read of a tenant's row: a change (voicefarm tenants
# set) reaches every API process within this.
POLICY_SECONDS = 10.0


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
