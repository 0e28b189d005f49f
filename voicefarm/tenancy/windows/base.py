"""What a tenant's per-minute and per-day windows count, and the interface every kind gives."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

from voicefarm.errors import TooManyRequests
from voicefarm.tenancy.admission import Policy, over

MINUTE, DAY = 60, 86_400
# The windows' wall clock. Each kind reads it as base.clock(), so a test that moves it moves theirs.
clock = time.time


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
