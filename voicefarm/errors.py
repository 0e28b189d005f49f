"""Every error voicefarm raises on purpose, in one tree.

    VoicefarmError
    ├── InvalidRequest        a request the farm will not take; the message names the problem
    │   └── SampleRejected    an uploaded reference sample that cannot clone a voice
    │       ├── SampleTooLarge      over the upload limit
    │       └── UnreadableSample    not audio the farm can decode
    ├── Unauthorized          a missing or unknown API key
    │   └── Forbidden         a key without the rights this needs (admin)
    ├── NotFound              no such job, voice, batch or audio for this tenant
    │   └── Expired           the tenant's job, batch or audio was there, and retention deleted it
    ├── NotReady              the job has no audio yet
    │   └── ObjectMissing     stored audio deleted since its records were read (a purge): ask again
    ├── TooManyRequests       the tenant is over one of its admission limits; retry later
    ├── Unavailable           a server the farm needs (broker, database, cache) is down
    ├── AudioRejected         synthesized audio the quality gate refuses: the job moves on
    ├── JobFailed             the job finished without audio
    │   └── JobCanceled       its owner canceled it
    └── StreamBroken          a live stream stopped short: its attempt failed after its audio began

Domain code raises these and never speaks HTTP: the API maps each class to its status in one
place (`voicefarm.api.app`), and the SDK (`voicefarm.client`) maps statuses back to the same
classes, filling in `status` with the HTTP status it received.
"""

from __future__ import annotations


class VoicefarmError(Exception):
    """Base of the tree; `message` is for people, `status` the HTTP status a client received."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.message = message
        self.status = status


class InvalidRequest(VoicefarmError):
    """The request names something wrong (a field, a voice, a format): resending it will not help."""


class SampleRejected(InvalidRequest):
    """A voice's reference sample does not meet the bar for cloning (level, noise, speech)."""


class SampleTooLarge(SampleRejected):
    """A reference sample over the size or length limit."""


class UnreadableSample(SampleRejected):
    """A reference sample that no decoder can read as audio."""


class Unauthorized(VoicefarmError):
    """No API key, or one the farm does not know."""


class Forbidden(Unauthorized):
    """A known key asking for what it may not: another tenant's job, an admin call."""


class NotFound(VoicefarmError):
    """No such job, batch, voice or object for this tenant."""


class Expired(NotFound):
    """It existed, but retention has forgotten it."""


class NotReady(VoicefarmError):
    """It exists but has no answer yet (audio still being made): ask again later."""


class ObjectMissing(NotReady):
    """An object its records name is not in the store: deleted (DELETE /v1/cache, a deleted
    voice, retention) between reading the records and reading the object. Asked again, the
    request finds the records gone too and is answered anew."""


class TooManyRequests(VoicefarmError):
    """`retry_after`: whole seconds until the limit may admit the request (the API's Retry-After)."""

    def __init__(self, message: str, status: int | None = None, retry_after: int = 1) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class Unavailable(VoicefarmError):
    """The farm cannot take the request now (no live worker, a server down, a voice its engines
    have yet to advertise): retry later; after `retry_after` seconds when the farm can tell."""

    def __init__(self, message: str, status: int | None = None, retry_after: int | None = None) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class AudioRejected(VoicefarmError):
    """An engine's audio failed the quality gate: the job moves down its chain."""


class JobFailed(VoicefarmError):
    """`job` is the job's final state, as the SDK received it."""

    def __init__(self, message: str, job: object = None) -> None:
        super().__init__(message)
        self.job = job


class JobCanceled(JobFailed):
    """The job was canceled (POST /v1/jobs/{id}/cancel, or its batch's): it ends with no audio."""


class StreamBroken(VoicefarmError):
    """A stream never splices two engines' audio: when the attempt it relays fails after its
    first piece, it stops short (a raw stream is cut off before its last chunk, an SSE stream
    sends an `error` event). The job itself goes on down its chain: poll `job_id` for its audio."""

    def __init__(self, message: str, job_id: str, status: int | None = None) -> None:
        super().__init__(message, status)
        self.job_id = job_id
