"""Fair scheduling between tenants, with the broker's own priorities.

Redis serves an engine's queue level by level (0 first), and each level first in, first out. A
job's level grows with the number of jobs its tenant already has waiting, so a tenant with
nothing waiting goes ahead of one with two thousand: a flood delays the other tenants by about
one job per worker, not by the flood. The flooding tenant still gets every worker the others
leave idle, and its own jobs keep their order within a level. Batch jobs take the levels below
every interactive job, and a big batch does not hold back a tenant's small one.

The embedded farm's filesystem broker has no priorities: it serves first come, first served.
"""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from voicefarm.store.models import IS_ACTIVE, Job, JobStatus

# A tenant's waiting jobs at which its next job drops a level: none, then 1 to 7, then 8 or more.
THRESHOLDS = (1, 8)
INTERACTIVE, BATCH = 0, len(THRESHOLDS) + 1  # the first level of each class
LEVELS = list(range(2 * BATCH))  # every level in use: the broker's priority steps


def level(waiting: int) -> int:
    """The level, within its class, of a job whose tenant has `waiting` other jobs queued."""
    return sum(waiting >= t for t in THRESHOLDS)


def priorities(s: Session, tenant_id: str, count: int, *, batch: bool) -> list[int]:
    """The priorities of `count` queued jobs of a tenant, about to be sent in this order."""
    # Counting stops where the levels do, so the cost never grows with the tenant's backlog.
    # The active statuses written out let even a prepared plan use ix_jobs_active_tenant.
    cap = THRESHOLDS[-1] + count
    queued = select(Job.id).where(
        Job.tenant_id == tenant_id, text(IS_ACTIVE), Job.status == JobStatus.queued.value, Job.leader_id.is_(None)
    )
    waiting = s.scalar(select(func.count()).select_from(queued.limit(cap).subquery())) or 0
    ahead = max(0, waiting - count)  # the jobs being sent are queued already
    first = BATCH if batch else INTERACTIVE
    return [first + level(ahead + i) for i in range(count)]
