"""The HTTP API: a thin front that validates, answers from the cache, and enqueues."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from voicefarm import __version__, errors
from voicefarm.api import admin, batches, console, contract, health, jobs, openai, voices
from voicefarm.schemas import HEADER_VALUE, PLAIN, PRINTABLE
from voicefarm.settings import Settings, get_settings

# The one place an error of the farm's becomes an HTTP status; the most specific class wins.
STATUS: dict[type[errors.VoicefarmError], int] = {
    errors.InvalidRequest: 422,
    errors.SampleTooLarge: 413,
    errors.UnreadableSample: 415,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.NotReady: 409,
    errors.JobFailed: 409,  # the state the client asked about, not a fault of the server
    errors.TooManyRequests: 429,
    errors.Unavailable: 503,
}


def status_of(e: errors.VoicefarmError) -> int:
    return next(STATUS[cls] for cls in type(e).__mro__ if cls in STATUS)


def _field(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in loc if p != "body") or "body"


def _message(problem: dict[str, Any]) -> str:
    # Whatever pattern the field has, a control character is what to name.
    if problem["type"] == "string_pattern_mismatch" and not re.fullmatch(PRINTABLE, problem["input"]):
        return "contains a control character (only tab and line breaks are allowed)"
    if problem["type"] == "value_error":
        reason = str(problem.get("ctx", {}).get("error", problem["msg"]))  # without pydantic's "Value error, "
        # FastAPI's own names a Python class.
        return "must be a file, sent as a file part of a multipart/form-data body" if "UploadFile" in reason else reason
    return str(problem["msg"])


PLAIN_VALUE = re.compile(PLAIN)
HEADER_PLAIN = re.compile(HEADER_VALUE)


class RefuseControlCharacters:
    """A 400 for a path, query or header value with a control character (a NUL in a path once
    reached PostgreSQL as a 500). Plain ASGI, so the cache-hit path pays three regex searches."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # ASGI hands the path already percent-decoded, the query string not.
            where = (
                "path"
                if not PLAIN_VALUE.fullmatch(scope["path"])
                else "query"
                if not PLAIN_VALUE.fullmatch(unquote(scope["query_string"].decode("latin-1")))
                else "header"
                if not all(HEADER_PLAIN.fullmatch(value.decode("latin-1")) for _, value in scope["headers"])
                else None
            )
            if where is not None:
                response = JSONResponse({"error": f"the request's {where} contains a control character"}, 400)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for these settings (the process's own by default): uvicorn calls it as a factory,
    and a test can make one in process."""
    settings = settings or get_settings()
    app = FastAPI(title="voicefarm", version=__version__, description="Distributed text-to-speech farm.")
    for module in (health, jobs, batches, voices, openai, admin, console):
        app.include_router(module.router)
    app.mount("/console", console.files, name="console")
    app.openapi = lambda: contract.openapi(app, settings)  # type: ignore[method-assign]

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, e: HTTPException) -> JSONResponse:
        return JSONResponse({"error": e.detail}, status_code=e.status_code, headers=e.headers)

    @app.exception_handler(errors.VoicefarmError)
    async def farm_error(_: Request, e: errors.VoicefarmError) -> JSONResponse:
        after = e.retry_after if isinstance(e, errors.TooManyRequests | errors.Unavailable) else None
        retry = None if after is None else {"Retry-After": str(after)}
        return JSONResponse({"error": e.message}, status_code=status_of(e), headers=retry)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        problems = e.errors()
        if any(p["type"] == "json_invalid" for p in problems):
            return JSONResponse({"error": "malformed JSON body"}, status_code=400)
        message = "; ".join(f"{_field(p['loc'])}: {_message(p)}" for p in problems)
        return JSONResponse({"error": message}, status_code=422)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def database_down(_: Request, e: OperationalError | InterfaceError) -> JSONResponse:
        return JSONResponse({"error": f"database unavailable: {e.orig}"}, status_code=503)

    @app.exception_handler(RedisError)
    async def cache_down(_: Request, e: RedisError) -> JSONResponse:
        return JSONResponse({"error": f"cache unavailable: {e}"}, status_code=503)

    app.add_middleware(RefuseControlCharacters)
    return app
