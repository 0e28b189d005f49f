"""The windows a tenant's `submissions_per_minute` and `chars_per_day` are counted in: fixed
windows of UTC minutes and days, behind one interface (`base`) with one class per kind.

With Redis (`redis`) they are counted there, under the farm's prefix, in one round trip that
checks both and counts the request only if both have room, so every API process shares them;
without Redis (`local`: the embedded farm, one API process) they are counted in this process.
What the limits are, and how a refusal names one, is admission's (`voicefarm.tenancy.admission`).
"""

from __future__ import annotations

from functools import lru_cache

from voicefarm.settings import get_settings
from voicefarm.store.redis import aconnect
from voicefarm.tenancy.windows.base import Grant, Windows
from voicefarm.tenancy.windows.local import LocalWindows
from voicefarm.tenancy.windows.redis import RedisWindows

__all__ = ["Grant", "LocalWindows", "RedisWindows", "Windows", "get_windows"]


@lru_cache
def get_windows() -> Windows:
    """Redis's windows where the farm has a Redis, else local ones."""
    settings = get_settings()
    return RedisWindows(aconnect(settings.redis_url), settings.redis_prefix) if settings.redis_url else LocalWindows()
