"""What endpoints depend on: a database session and the caller's tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, TypeVar

from fastapi import Depends, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from voicefarm.errors import Forbidden, Unauthorized
from voicefarm.store import db
from voicefarm.store.models import Batch, Job
from voicefarm.tenancy.auth import NOT_CACHED, Principal, authenticate, cached_principal


async def get_db() -> AsyncIterator[Session]:
    # Async so FastAPI does not hop to a thread for it: making a Session does no I/O, and the
    # endpoints that use it run in the threadpool anyway.
    with db.session_factory()() as s:
        yield s


# Security schemes rather than plain headers: the OpenAPI schema then says every endpoint but the
# health check needs a key, in either place, and clients and fuzzers send it from their auth config.
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key")
bearer = HTTPBearer(auto_error=False, description="The same API key, as Authorization: Bearer")


async def principal(
    request: Request,
    s: Annotated[Session, Depends(get_db)],
    x_api_key: Annotated[str | None, Security(api_key_header)],
    authorization: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Principal:
    # A malformed Authorization header is refused even beside a good X-API-Key: credentials the
    # API cannot read are a client's mistake to show, not to ignore.
    raw = request.headers.get("authorization")
    if raw is not None and authorization is None and raw.strip().lower() != "bearer":
        raise Unauthorized("malformed Authorization header: send Authorization: Bearer <API key>")
    key = x_api_key or (authorization.credentials.strip() if authorization else None)
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


# How many of a tenant's latest rows a list endpoint (GET /v1/jobs, GET /v1/batches) returns.
Limit = Annotated[int, Query(ge=1, le=100, description="How many, newest first")]
Row = TypeVar("Row", Job, Batch)


def newest(model: type[Row], tenant_id: str, limit: int) -> Select[Row]:
    """A tenant's latest rows, newest first, through the table's (tenant_id, created_at) index."""
    return (
        select(model)
        .where(model.tenant_id == tenant_id)
        .order_by(model.created_at.desc(), model.id.desc())
        .limit(limit)
    )
