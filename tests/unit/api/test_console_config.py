"""The console's Ops page links each figure to the Grafana panel it mirrors: each panel id names
a panel of the dashboard in deploy/ that shows that figure."""

from __future__ import annotations

import json
from pathlib import Path

from voicefarm.api.console import DASHBOARD_UID, PANELS

DASHBOARD = json.loads((Path(__file__).parents[3] / "deploy/grafana/dashboards/voicefarm.json").read_text())
TITLES = {
    "queue_depth": "Queue depth per engine",
    "live_workers": "Live workers per engine",
    "failure_rate": "Failure rate per engine",
    "fallback_rate": "Fallback rate per engine",
    "job_failure_rate": "Job failure rate",
    "real_time_factor": "Real-time factor p50 (synthesis s per audio s)",
    "cache_hit_ratio": "Cache hit ratio",
}


def test_every_linked_panel_is_the_dashboards_panel_of_that_figure() -> None:
    assert DASHBOARD["uid"] == DASHBOARD_UID
    titles = {panel["id"]: panel["title"] for panel in DASHBOARD["panels"]}
    assert {figure: titles.get(panel) for figure, panel in PANELS.items()} == TITLES
