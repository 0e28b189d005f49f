"""API keys: each maps to one tenant; only their sha256 is stored."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from voicefarm.store.models import ApiKey, Tenant

KEY_PREFIX = "vf_"
_CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    admin: bool


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, tenant_id: str, *, name: str = "", admin: bool = False) -> str:
    """Create the tenant if needed and a new key for it; returns the key (shown once)."""
    if session.get(Tenant, tenant_id) is None:
        session.add(Tenant(id=tenant_id, name=tenant_id))
        session.flush()
    key = KEY_PREFIX + secrets.token_urlsafe(24)
    session.add(ApiKey(key_hash=hash_key(key), tenant_id=tenant_id, name=name, admin=admin))
    return key


# Keys are checked on every request; a short in-process cache keeps the cache-hit path off the
# database. A revoked key stays valid here for at most _CACHE_SECONDS.
_cache: dict[str, tuple[float, Principal | None]] = {}


NOT_CACHED = object()


def cached_principal(key: str) -> Principal | object | None:
    """The cached answer for `key`, or NOT_CACHED when the database must be asked."""
    hit = _cache.get(hash_key(key))
    if hit is not None and time.monotonic() - hit[0] < _CACHE_SECONDS:
        return hit[1]
    return NOT_CACHED


def authenticate(session: Session, key: str) -> Principal | None:
    digest = hash_key(key)
    row = session.get(ApiKey, digest)
    principal = Principal(row.tenant_id, row.admin) if row else None
    _cache[digest] = (time.monotonic(), principal)
    return principal


def dev_key(session: Session, data_dir: Path) -> str:
    """The embedded farm's local development key: created once, kept in data_dir."""
    path = data_dir / "dev-api-key"
    if path.is_file():
        key = path.read_text().strip()
        if session.get(ApiKey, hash_key(key)) is not None:
            return key
    key = create_key(session, "local", name="local development key", admin=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key
