"""Windows counted in this process, where the farm has no Redis (the embedded farm)."""

from __future__ import annotations

from voicefarm.tenancy.admission import Policy
from voicefarm.tenancy.windows import base
from voicefarm.tenancy.windows.base import Grant, grant, refusal


class LocalWindows:
    """Windows in this process, for the embedded farm's single API process. Used from the event
    loop only, so it needs no lock."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, int], int] = {}
        self.minute = 0

    async def take(self, p: Policy, submissions: int, chars: int) -> Grant:
        now = base.clock()
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
