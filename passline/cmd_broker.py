"""``passline broker``: the broker process (DESIGN.md §5.1). Wiring only."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click

from broker import gc_tuning
from broker.app import start_broker
from broker.config import Settings, load_settings
from broker.errors import BrokerError


@click.command("broker")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file with a [broker] table (http, ws, store, secret, limits...).",
)
@click.option("--http", help="HOST:PORT for REST, metrics and the web apps [127.0.0.1:8080].")
@click.option("--ws", help="HOST:PORT for the websocket data plane [127.0.0.1:8765].")
@click.option(
    "--store",
    help="Storage URL: sqlite:///path.db (default ./passline-broker.db), "
    "redis://host:6379/0 (scale-out: any number of brokers on one Redis) or memory://.",
)
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="PEM certificate.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="PEM private key.")
@click.option(
    "--default-timezone",
    metavar="ZONE",
    help="IANA time zone of stores whose config names none, e.g. Asia/Shanghai [UTC].",
)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
def broker(
    config_file: Path | None,
    http: str | None,
    ws: str | None,
    store: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    default_timezone: str | None,
    log_level: str | None,
) -> None:
    """Run the broker: REST on --http, websockets on --ws, one process.

    The token signing secret comes from PASSLINE_SECRET or the config file. SIGTERM
    drains: stop accepting, close peers with 1012, flush storage, exit 0.
    """
    try:
        settings = load_settings(
            config_file,
            http=http,
            ws=ws,
            store=store,
            tls_cert=tls_cert,
            tls_key=tls_key,
            default_timezone=default_timezone,
            log_level=log_level,
        )
        from broker.auth import check_secret

        check_secret(settings.secret)
    except BrokerError as exc:
        raise click.ClickException(exc.detail) from None
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        _run(_serve(settings))
    except BaseException as exc:  # unwrap TaskGroup groups: user mistakes get one line
        problem = _user_error(exc)
        if problem is None:
            raise
        raise click.ClickException(problem) from None


def _user_error(exc: BaseException) -> str | None:
    if isinstance(exc, BaseExceptionGroup):
        found = [_user_error(e) for e in exc.exceptions]
        return next((f for f in found if f is not None), None)
    if isinstance(exc, BrokerError):
        return exc.detail
    if isinstance(exc, OSError):
        return f"cannot listen: {exc.strerror or exc}"
    return None


async def _serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with start_broker(settings) as b:
        http_host, _ = settings.http_addr()
        ws_host, _ = settings.ws_addr()
        click.echo(
            f"passline broker listening http={http_host}:{b.http_port} ws={ws_host}:{b.ws_port}",
        )
        sys.stdout.flush()
        # This process is the broker's alone (tests run brokers inside theirs): tune its
        # collector once everything is set up (broker/gc_tuning.py).
        gc_tuning.tune(b.services.metrics.gc_pauses)
        await stop.wait()
        logging.getLogger("passline.broker").info("stop requested: draining")


def _run(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # Windows
        asyncio.run(main)
    else:
        uvloop.run(main)
