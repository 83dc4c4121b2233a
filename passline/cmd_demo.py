"""``passline demo``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.option("--port-http", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--port-ws", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--data",
    "data_dir",
    default=".passline-demo",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the broker database, the spool and the printed receipts go.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0 to open the screens from tablets on the LAN).",
)
@click.option("--rate", default=1.0, show_default=True, help="Multiply the order rate.")
@click.option("--seed", type=int, help="Seed the order generator for a repeatable run.")
def demo(
    port_http: int, port_ws: int, data_dir: Path, host: str, rate: float, seed: int | None
) -> None:
    """Run a whole store on this machine: broker, printers, store client, orders, screens."""
    from passline.demo import Demo, DemoOptions
    from passline.runtime import run_until_signal, setup_logging

    setup_logging("WARNING")
    options = DemoOptions(host, port_http, port_ws, data_dir, seed, rate)
    try:
        run_until_signal(Demo(options).run())
    except* OSError as group:
        raise click.ClickException(f"cannot start the demo: {group.exceptions[0]}") from None
    click.echo("\nstopped.")
