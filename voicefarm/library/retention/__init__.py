"""Retention: what the farm forgets, and when.

- A finished job goes, with its attempts, `job_retention_days` after it finished. A job in a
  batch goes with its batch, that long after the batch was done: the batch's counts and manifest
  need every item. Queued and running jobs never go.
- Audio (its rendition row, its object, the lossless master of its speech and that speech's
  word timestamps once no rendition of that speech is left, and its Redis entry) goes
  `audio_retention_days` after its last use, and never while a job that is kept points at it.
  Uses noted in Redis are folded in first.
- An object under `audio/` or `voices/` that no record accounts for (a crash between storing and
  recording, an older version) goes once it was last written `gc_orphan_grace_seconds` ago:
  longer than any task may run, so a worker that has stored audio and not yet recorded it is
  never raced.
- Each expired job, batch and audio leaves a tombstone, so its id answers "expired" rather than
  "no such" to its tenant; tombstones go `tombstone_retention_days` after.
- Cloned voices are not history: they stay until their owner deletes them.

`policy` says what is past keeping; `collector` deletes it (`collect`), or with `dry_run` counts
it; `tombstones` remembers what went, for the API's answers; `periodic` runs the collector every
`gc_interval_seconds` from the reconciler's loop. `voicefarm gc` runs it by hand, and `--dry-run`
reports without deleting.

May import: settings, errors, audio, store, and the library's `cache` and `renditions`.
`tombstones` imports none of the others, so the API depends on it alone.
"""

from __future__ import annotations

from voicefarm.library.retention.collector import Report, collect
from voicefarm.library.retention.periodic import Periodic

__all__ = ["Periodic", "Report", "collect"]
