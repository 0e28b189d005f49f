"""The HTTP API: a thin front that validates, answers from the cache, and enqueues."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException

from voicefarm import __version__, errors
from voicefarm.api import admin, batches, health, jobs, openai, voices

# The one place an error of the farm's becomes an HTTP status; the most specific class wins.
STATUS: dict[type[errors.VoicefarmError], int] = {
    errors.InvalidRequest: 422,
    errors.SampleTooLarge: 413,
    errors.UnreadableSample: 415,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.NotReady: 409,
    errors.Unavailable: 503,
}


def status_of(e: errors.VoicefarmError) -> int:
    return next(STATUS[cls] for cls in type(e).__mro__ if cls in STATUS)


def _field(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in loc if p != "body") or "body"


def create_app() -> FastAPI:
    app = FastAPI(title="voicefarm", version=__version__, description="Distributed text-to-speech farm.")
    for module in (health, jobs, batches, voices, openai, admin):
        app.include_router(module.router)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, e: HTTPException) -> JSONResponse:
        return JSONResponse({"error": e.detail}, status_code=e.status_code, headers=e.headers)

    @app.exception_handler(errors.VoicefarmError)
    async def farm_error(_: Request, e: errors.VoicefarmError) -> JSONResponse:
        return JSONResponse({"error": e.message}, status_code=status_of(e))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        problems = e.errors()
        if any(p["type"] == "json_invalid" for p in problems):
            return JSONResponse({"error": "malformed JSON body"}, status_code=400)
        message = "; ".join(f"{_field(p['loc'])}: {p['msg']}" for p in problems)
        return JSONResponse({"error": message}, status_code=422)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def database_down(_: Request, e: OperationalError | InterfaceError) -> JSONResponse:
        return JSONResponse({"error": f"database unavailable: {e.orig}"}, status_code=503)

    @app.exception_handler(RedisError)
    async def cache_down(_: Request, e: RedisError) -> JSONResponse:
        return JSONResponse({"error": f"cache unavailable: {e}"}, status_code=503)

    return app


app = create_app()
