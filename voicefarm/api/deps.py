"""What endpoints depend on: a database session, the caller's tenant, the catalog."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Header
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from voicefarm import db
from voicefarm.auth import NOT_CACHED, Principal, authenticate, cached_principal
from voicefarm.catalog import Catalog, Catalogs
from voicefarm.errors import Forbidden, Unauthorized
from voicefarm.heartbeat import LiveEngines
from voicefarm.settings import get_settings


async def get_db() -> AsyncIterator[Session]:
    # Async so FastAPI does not hop to a thread for it: making a Session does no I/O, and the
    # endpoints that use it run in the threadpool anyway.
    with db.session_factory()() as s:
        yield s


@lru_cache
def catalogs() -> Catalogs:
    return Catalogs(get_settings())


def get_catalog() -> Catalog:
    """The catalog, at most a moment old; it may read the database, so call it off the event loop."""
    return catalogs()()


async def current_catalog() -> Catalog:
    """get_catalog() for async code: a thread only when the remembered one is stale."""
    fresh = catalogs().fresh
    return fresh if fresh is not None else await run_in_threadpool(catalogs())


@lru_cache
def get_live() -> LiveEngines:
    return LiveEngines(get_settings())


async def principal(
    s: Annotated[Session, Depends(get_db)],
    x_api_key: Annotated[str | None, Header(description="API key (or use Authorization: Bearer)")] = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    key = x_api_key
    if key is None and authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:].strip()
    if not key:
        raise Unauthorized("missing API key: send it in the X-API-Key header or as Authorization: Bearer")
    cached = cached_principal(key)
    found = await run_in_threadpool(authenticate, s, key) if cached is NOT_CACHED else cached
    if not isinstance(found, Principal):
        raise Unauthorized("invalid API key")
    return found


async def admin(caller: Annotated[Principal, Depends(principal)]) -> Principal:
    if not caller.admin:
        raise Forbidden("this endpoint needs an admin API key")
    return caller


DB = Annotated[Session, Depends(get_db)]
Caller = Annotated[Principal, Depends(principal)]
Admin = Annotated[Principal, Depends(admin)]
