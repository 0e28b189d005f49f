"""Serve `voicefarm.telemetry.counters` from a worker's (or the reconciler's) main process: the counts of
the main process and of every pool child, summed, the children's kept after they exit.

prometheus_client's multiprocess mode does this: each process writes its values to files of
its own in one directory, and a scrape adds the files up. The directory is new at every start,
so a restarted worker begins at zero, which Prometheus reads as a counter reset; a pool child
that was killed and replaced leaves its file behind, and its counts with it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile


def serve(host: str, port: int) -> int:
    """Start serving /metrics on a thread of this process; returns the port (0 picks a free
    one). Call it before anything imports prometheus_client: the library chooses, at import,
    whether values live in the process or in the shared files."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before its multiprocess directory was set")
    directory = tempfile.mkdtemp(prefix="voicefarm-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    owner = os.getpid()

    def remove() -> None:
        if os.getpid() == owner:  # a forked pool child inherits this hook
            shutil.rmtree(directory, ignore_errors=True)

    atexit.register(remove)

    from prometheus_client import CollectorRegistry, generate_latest, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    # One scrape here, before the server thread exists: it imports what a scrape needs, so a
    # pool child is never forked while that thread holds an import lock.
    generate_latest(registry)
    server, _ = start_http_server(port, addr=host, registry=registry)
    return int(server.server_port)
