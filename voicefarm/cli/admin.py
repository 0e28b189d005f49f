"""One-off work on the farm's database: migrations, API keys, tenants' limits, collection. Each
needs the database, not a running farm."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from voicefarm.cli.output import console
from voicefarm.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]


def migrate() -> None:
    """Apply the database migrations (alembic upgrade head)."""
    from alembic.config import Config

    from alembic import command

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")
    console.print(f"database at head: {settings.database_url.split('@')[-1]}")


def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would be deleted; delete nothing.")] = False,
) -> None:
    """Delete what retention no longer keeps: finished jobs and their attempts, done batches
    (VOICEFARM_JOB_RETENTION_DAYS), unused audio (VOICEFARM_AUDIO_RETENTION_DAYS), objects no
    record accounts for, old tombstones. The reconciler also runs this on its own schedule."""
    from rich.table import Table

    from voicefarm.library.retention import collect

    report = collect(get_settings(), dry_run=dry_run)
    table = Table(title="would delete (dry run)" if dry_run else "deleted")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("bytes", justify="right")
    for what, count, size in report.rows():
        table.add_row(what, str(count), "" if size is None else f"{size:,}")
    console.print(table)
    if not dry_run:
        console.print(f"uses of audio folded in from Redis: {report.uses}")


def keys_create(
    tenant: Annotated[str, typer.Option(help="Tenant id; created if new.")],
    admin: Annotated[bool, typer.Option(help="May use the admin endpoints.")] = False,
    name: Annotated[str, typer.Option()] = "",
) -> None:
    """Create an API key for a tenant and print it (it is not shown again)."""
    from voicefarm.store import db
    from voicefarm.tenancy.auth import create_key

    with db.session() as s:
        print(create_key(s, tenant, name=name, admin=admin))


def _limit(value: str | None, option: str) -> dict[str, int | str | None]:
    """An option's change: none when not given, None to go back to the farm's setting."""
    if value is None:
        return {}
    name = option.removeprefix("--").replace("-", "_")
    if value == "default":
        return {name: None}
    if not value.isdigit() or int(value) < 1:
        raise typer.BadParameter(f"{value!r}: give a whole number of at least 1, or 'default'", param_hint=option)
    return {name: int(value)}


LIMIT_HELP = "N, or 'default' for the farm's setting"


def tenants_set(
    tenant: str,
    max_active_jobs: Annotated[str | None, typer.Option(help=f"Queued plus running jobs: {LIMIT_HELP}.")] = None,
    submissions_per_minute: Annotated[
        str | None, typer.Option(help=f"Submissions a minute, each batch item one: {LIMIT_HELP}.")
    ] = None,
    chars_per_day: Annotated[str | None, typer.Option(help=f"Characters a UTC day: {LIMIT_HELP}.")] = None,
    cache: Annotated[
        str | None, typer.Option(help="shared, private (the tenant's own cache), or 'default' for the farm's.")
    ] = None,
) -> None:
    """Override a tenant's admission limits or cache scope; API processes apply a change within
    10 s. A private cache starts empty: the tenant's earlier audio is not in it."""
    from voicefarm.errors import VoicefarmError
    from voicefarm.store import db
    from voicefarm.tenancy import admission

    changes = {
        **_limit(max_active_jobs, "--max-active-jobs"),
        **_limit(submissions_per_minute, "--submissions-per-minute"),
        **_limit(chars_per_day, "--chars-per-day"),
    }
    if cache is not None:
        changes["cache_scope"] = None if cache == "default" else cache
    try:
        with db.session() as s:
            admission.override(s, tenant, changes)
    except VoicefarmError as e:
        console.print(f"[red]{e.message}[/red]")
        raise typer.Exit(1) from None
    tenants_show(tenant)


def tenants_show(tenant: str) -> None:
    """A tenant's limits and cache scope, each its own or the farm's, and its active jobs now."""
    from voicefarm.errors import NotFound
    from voicefarm.store import db
    from voicefarm.store.models import Tenant
    from voicefarm.tenancy import admission

    settings = get_settings()
    with db.session() as s:
        row = s.get(Tenant, tenant)
        if row is None:
            console.print(f"[red]{NotFound(f'no tenant {tenant!r}').message}[/red]")
            raise typer.Exit(1)
        policy = admission.policy(s, tenant, settings)
        active = admission.active_jobs(s, tenant, policy.max_active_jobs)
    typer.echo(f"tenant {tenant}")
    for name in (*admission.LIMITS, "cache_scope"):
        own = getattr(row, name) is not None
        source = "set for this tenant" if own else f"farm default, VOICEFARM_{name.upper()}"
        typer.echo(f"  {name.replace('_', ' '):<24}{getattr(policy, name)!s:<14}({source})")
    typer.echo(f"  {'active jobs now':<24}{active}")
