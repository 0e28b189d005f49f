"""Signed callbacks: the farm signs each webhook body with the tenant's secret, and a receiving
service verifies it. One module for both sides, so they cannot drift apart.

`X-Voicefarm-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-Voicefarm-Signature"


def signature(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The header's value for a callback body sent at `timestamp`."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str | bytes, body: bytes, header: str, tolerance: float = 300) -> bool:
    """Whether a callback's header signs this raw body with the tenant's secret, at most
    `tolerance` seconds ago or ahead: an old callback, replayed, is refused."""
    try:
        fields = [(name.strip(), value.strip()) for name, value in (part.split("=", 1) for part in header.split(","))]
        timestamp = int(next(value for name, value in fields if name == "t"))
    except (ValueError, StopIteration):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = signature(secret, body, timestamp).rsplit("v1=", 1)[1]
    # Any v1 may match: the farm may sign with a new secret and the old one while rotating.
    return any(hmac.compare_digest(expected, value) for name, value in fields if name == "v1")
