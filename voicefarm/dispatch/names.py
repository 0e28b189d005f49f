"""Every task and queue name the farm sends or serves, in one table: a sender and the worker that
runs its task agree on these strings through the broker, never through an import."""

from __future__ import annotations

SYNTHESIZE = "voicefarm.synthesize"  # a job's run on one engine
DOCUMENT = "voicefarm.document"  # a long text's fan-out into segments
SEGMENT = "voicefarm.segment"  # one segment of a document
JOIN = "voicefarm.join"  # the chord callback that joins a document's segments
LOST = "voicefarm.lost"  # a run that died without reporting: move its job on
ALIGN = "voicefarm.align"  # word timestamps of a stored speech
WEBHOOK = "voicefarm.webhook"  # a signed callback to a client

ENGINE_QUEUE_PREFIX = "tts."  # an engine's jobs, documents and segments: tts.<engine>
DEFAULT_QUEUE = "tts.default"
# Their own queues, not `tts.*`: what the broker's queue scans count as engines' jobs never holds them.
ALIGN_QUEUE = "voicefarm.align"
WEBHOOK_QUEUE = "voicefarm.webhooks"

# The modules whose tasks a worker registers.
TASK_MODULES = ["voicefarm.worker.tasks", "voicefarm.worker.documents", "voicefarm.worker.webhooks"]


def engine_queue(engine: str) -> str:
    return f"{ENGINE_QUEUE_PREFIX}{engine}"
