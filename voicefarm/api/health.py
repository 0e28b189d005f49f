"""GET /healthz: each dependency checked on its own, so ops see which one is down."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from voicefarm.dispatch.app import get_celery
from voicefarm.library.cache import get_cache
from voicefarm.store import db
from voicefarm.store.objects import get_store

router = APIRouter(tags=["health"])


def _broker() -> str:
    with get_celery().connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return str(conn.as_uri())


def _database() -> str:
    with db.sql_engine().connect() as conn:
        conn.execute(text("SELECT 1"))
    return db.sql_engine().url.render_as_string(hide_password=True)


def _store() -> str:
    get_store().check()
    return type(get_store()).__name__


def _cache() -> str:
    return get_cache().check()


CHECKS: dict[str, Callable[[], str]] = {"broker": _broker, "database": _database, "store": _store, "cache": _cache}


@router.get("/healthz")
def healthz() -> JSONResponse:
    results = {}
    for name, check in CHECKS.items():
        try:
            results[name] = {"ok": True, "detail": check()}
        except Exception as e:
            results[name] = {"ok": False, "detail": f"{type(e).__name__}: {e}"}
    ok = all(r["ok"] for r in results.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": results}, status_code=200 if ok else 503)
