"""``thresher config``: the effective settings of this environment, where each comes from, secrets masked."""

from __future__ import annotations

import click

from thresher.cli import console
from thresher.core.settings import PARTS, Settings, unknown_variables


@click.command()
@click.option(
    "--part", type=click.Choice(PARTS), default=None, help="only the settings this part reads (default: every setting)"
)
@click.option("--changed", is_flag=True, help="only the settings the environment sets")
def config(part: str | None, changed: bool) -> int:
    """Print every Thresher setting: its variable, its value here, where the value comes from, who reads it.

    Secrets (tokens, the PostgreSQL URL) show as ******** when set. A THRESHER_* variable that names no
    setting is reported with the closest known name (services refuse to start with one); exit 2 then.
    """
    import os

    from rich.table import Table

    settings = Settings.from_env()
    table = Table("variable", "value", "source", "read by")
    for setting, value, source in settings.effective(part):
        if changed and source == "default":
            continue
        if source.startswith("$"):
            variable = source[1:]
            source = "env" if variable == setting.env else f"env, as {variable} (deprecated: set {setting.env})"
        table.add_row(setting.env, value, source, ", ".join(setting.parts))
    console.out().print(table)
    unknown = unknown_variables(os.environ)
    for _, message in unknown:
        console.warn(message)
    return 2 if unknown else 0


COMMANDS = [config]
