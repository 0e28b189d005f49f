"""The `voicefarm` command line: this module builds the typer app from the commands of

- `serve`: the farm's long-running processes (API, workers, webhooks, aligner, Flower, the
  reconciler) and the farms that run here in the foreground (`up`, `demo`);
- `admin`: one-off work on the farm's database (migrations, keys, tenants' limits, collection);
- `speak`: the SDK's commands, which reach a running farm over HTTP only (`say`, `pregen`, `cancel`);
- `output`: the console they all print to.

Commands import what they use when they run, so `--help` and each command load only their own
dependencies, and some in an order that matters (see `serve`).

May import: everything in voicefarm. Nothing in voicefarm imports it.
"""

import typer

from voicefarm.cli import admin, serve, speak

app = typer.Typer(help="voicefarm: a distributed text-to-speech farm.", no_args_is_help=True, add_completion=False)
# In this order `voicefarm --help` lists them.
for command in (
    admin.migrate,
    serve.api,
    serve.worker,
    serve.webhooks,
    serve.aligner,
    serve.flower,
    serve.reconcile,
    admin.gc,
    serve.up,
    speak.say,
    speak.pregen,
    speak.cancel,
    serve.demo,
):
    app.command()(command)

keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
keys_app.command("create")(admin.keys_create)
app.add_typer(keys_app, name="keys")

tenants_app = typer.Typer(help="Tenants' admission limits and cache scope.", no_args_is_help=True)
tenants_app.command("set")(admin.tenants_set)
tenants_app.command("show")(admin.tenants_show)
app.add_typer(tenants_app, name="tenants")
