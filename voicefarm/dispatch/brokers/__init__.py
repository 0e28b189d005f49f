"""What the farm must know about its broker's insides, behind one interface per broker kind.

Celery hides most of the broker, but ops need queue depths, the reconciler needs the ids of the
messages the broker holds, and workers need transport options and command-line flags. Those
are the only places that know kombu's storage layout: Redis lists and hashes, or the
filesystem transport's message files (the embedded farm).
"""

from __future__ import annotations

from voicefarm.dispatch.brokers.base import Broker
from voicefarm.dispatch.brokers.filesystem import FilesystemBroker
from voicefarm.dispatch.brokers.redis import RedisBroker
from voicefarm.settings import Settings

__all__ = ["Broker", "FilesystemBroker", "RedisBroker", "for_settings"]


def for_settings(settings: Settings) -> Broker:
    """The broker kind the settings' broker URL names."""
    return FilesystemBroker(settings) if settings.broker_url.startswith("filesystem://") else RedisBroker(settings)
