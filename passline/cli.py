"""``passline`` command group. Subcommands arrive with the parts they run."""

from __future__ import annotations

from pathlib import Path

import click

from protocol.version import PROTOCOL_VERSION, __version__


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "PASSLINE"}
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


def _register() -> None:
    from passline.cmd_broker import broker
    from passline.cmd_token import token

    cli.add_command(broker)
    cli.add_command(token)
    from passline.cmd_demo import demo
    from passline.cmd_printer_sim import printer_sim
    from passline.cmd_store_client import store_client

    cli.add_command(store_client)
    cli.add_command(demo)
    cli.add_command(printer_sim)


_register()


def main() -> None:
    cli()
