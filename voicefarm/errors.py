"""Every error voicefarm raises on purpose, in one tree.

    VoicefarmError
    ├── InvalidRequest        a request the farm will not take; the message names the problem
    │   └── SampleRejected    an uploaded reference sample that cannot clone a voice
    │       ├── SampleTooLarge      over the upload limit
    │       └── UnreadableSample    not audio the farm can decode
    ├── Unauthorized          a missing or unknown API key
    │   └── Forbidden         a key without the rights this needs (admin)
    ├── NotFound              no such job, voice, batch or audio for this tenant
    ├── NotReady              the job has no audio yet
    ├── Unavailable           a server the farm needs (broker, database, cache) is down
    ├── AudioRejected         synthesized audio the quality gate refuses: the job moves on
    └── JobFailed             (SDK) the job finished without audio

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
    pass


class SampleRejected(InvalidRequest):
    pass


class SampleTooLarge(SampleRejected):
    pass


class UnreadableSample(SampleRejected):
    pass


class Unauthorized(VoicefarmError):
    pass


class Forbidden(Unauthorized):
    pass


class NotFound(VoicefarmError):
    pass


class NotReady(VoicefarmError):
    pass


class Unavailable(VoicefarmError):
    pass


class AudioRejected(VoicefarmError):
    pass


class JobFailed(VoicefarmError):
    """`job` is the job's final state, as the SDK received it."""

    def __init__(self, message: str, job: object = None) -> None:
        super().__init__(message)
        self.job = job
