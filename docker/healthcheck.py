"""Container health checks, one per role; exit status 0 means healthy.

    python /app/docker/healthcheck.py api      # GET /healthz answers 200 (503 names what is down)
    python /app/docker/healthcheck.py worker   # a Celery worker in this container answers a ping
    python /app/docker/healthcheck.py flower   # Flower's /healthcheck answers

Used by the images' HEALTHCHECK and by the Kubernetes probes, so both judge health alike.
"""

from __future__ import annotations

import socket
import sys
import urllib.request


def _get(url: str) -> None:
    # urlopen raises on a refused connection and on any 4xx/5xx, /healthz's 503 included.
    with urllib.request.urlopen(url, timeout=5) as response:
        response.read()


def api() -> None:
    from voicefarm.settings import get_settings

    _get(f"http://127.0.0.1:{get_settings().api_port}/healthz")


def worker() -> None:
    from voicefarm.dispatch.app import get_celery

    # Worker node names are "<engine>.<pid>@<hostname>"; the pid is not known from outside,
    # so ask whichever node of this host (this container, this pod) answers first.
    replies = (
        get_celery().control.inspect(pattern=f"*@{socket.gethostname()}", matcher="glob", timeout=5, limit=1).ping()
    )
    if not replies:
        sys.exit(f"no Celery worker on {socket.gethostname()} answered a ping")


def flower() -> None:
    _get("http://127.0.0.1:5555/healthcheck")  # the one Flower page that needs no login


CHECKS = {"api": api, "worker": worker, "flower": flower}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in CHECKS:
        sys.exit(f"usage: healthcheck.py {{{'|'.join(CHECKS)}}}")
    try:
        CHECKS[sys.argv[1]]()
    except Exception as e:  # the reason goes to `docker inspect` / the probe's event
        sys.exit(f"{sys.argv[1]} unhealthy: {type(e).__name__}: {e}")
