"""``passline`` command group. Subcommands arrive with the parts they run."""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from protocol.version import PROTOCOL_VERSION, __version__

#: Subcommands imported only when used: the store client (a 2 GB cashier PC) must not pay
#: for the broker's FastAPI/uvicorn imports just because they share a CLI.
LAZY_COMMANDS = {
    "broker": "passline.cmd_broker:broker",
    "token": "passline.cmd_token:token",
    "store-client": "passline.cmd_store_client:store_client",
    "printer-sim": "passline.cmd_printer_sim:printer_sim",
    "demo": "passline.cmd_demo:demo",
    "stores": "passline.cmd_stores:stores",
    "rollout": "passline.cmd_rollout:rollout",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "PASSLINE"},
)
@click.version_option(
    __version__, "--version", "-V", message=f"passline %(version)s (protocol {PROTOCOL_VERSION})"
)
def cli() -> None:
    """passline: order tickets from every sales channel to the kitchen."""


@cli.command()
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write the *.schema.json files to (created if missing).",
)
def schema(out: Path) -> None:
    """Write JSON Schemas of the KDS/HQ/store messages and the REST bodies."""
    from passline.schemas import write_schemas

    try:
        paths = write_schemas(out)
    except OSError as exc:
        raise click.ClickException(f"cannot write schemas to {out}: {exc.strerror}") from None
    click.echo(f"wrote {len(paths)} schemas to {out}")


def main() -> None:
    cli()
