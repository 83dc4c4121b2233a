"""``passline store-client``: the daemon on the store's cashier PC."""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path

import click

from store_client.edge_settings import EdgeSettings

#: Test aid, read from the environment only (no option on purpose): run as if this PC's
#: clock were that many seconds ahead (negative: behind) — docs/store-client.md.
CLOCK_SKEW_ENV = "PASSLINE_CLOCK_SKEW_S"
MIN_LAN_TOKEN = 32


@click.command("store-client")
@click.option(
    "--broker",
    envvar="PASSLINE_BROKER",
    required=True,
    help="ws://HOST:PORT or wss://…; several broker nodes comma-separated (tried in turn).",
)
@click.option("--store", "store_id", envvar="PASSLINE_STORE", required=True, help="Store id.")
@click.option("--token", envvar="PASSLINE_TOKEN", required=True, help="Token with scope store.")
@click.option(
    "--spool",
    envvar="PASSLINE_SPOOL",
    default="./passline-spool",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of the durable spool.",
)
@click.option(
    "--ca",
    envvar="PASSLINE_CA",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CA file to trust for wss:// (default: system CAs).",
)
@click.option(
    "--status-port",
    envvar="PASSLINE_STATUS_PORT",
    default=9180,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Local status page on 127.0.0.1 (0 turns it off).",
)
@click.option(
    "--allow-transport",
    "allow_transport",
    envvar="PASSLINE_ALLOW_TRANSPORT",
    multiple=True,
    metavar="PATTERN",
    help="Also let printers use this target (repeatable), e.g. tcp://203.0.113.0/24, "
    "tcp://printer.local:9100, file:///var/spool/receipts/. Default: tcp:// to private, "
    "link-local and loopback addresses, file:///dev/usb/lp*, serial:///dev/tty*, "
    "serial://COM*, usb://*; other file:// never (docs/store-client.md).",
)
@click.option(
    "--lan",
    envvar="PASSLINE_LAN",
    metavar="HOST:PORT",
    help="Serve the store edge on the LAN: POS devices post orders here and they print "
    "with or without the uplink (docs/store-edge.md). Off by default.",
)
@click.option(
    "--lan-token",
    envvar="PASSLINE_LAN_TOKEN",
    metavar="TOKEN",
    help="With --lan: the bearer token LAN devices must send (at least 32 characters; "
    "e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'). Unset: the "
    "store's own token, which also opens the store link.",
)
@click.option("--log-level", envvar="PASSLINE_LOG_LEVEL", default="INFO", show_default=True)
def store_client(
    broker: str,
    store_id: str,
    token: str,
    spool: Path,
    ca: Path | None,
    status_port: int,
    allow_transport: tuple[str, ...],
    lan: str | None,
    lan_token: str | None,
    log_level: str,
) -> None:
    """Link this store to the broker and drive its printers."""
    urls = [u.strip() for u in broker.split(",") if u.strip()]
    if not urls or not all(u.startswith(("ws://", "wss://")) for u in urls):
        raise click.BadParameter(
            "expected ws://HOST:PORT or wss://HOST:PORT (several nodes: comma-separated)",
            param_hint="--broker",
        )
    clock_skew_s = _clock_skew_s()
    if lan_token is not None and len(lan_token) < MIN_LAN_TOKEN:
        raise click.BadParameter(
            f"at least {MIN_LAN_TOKEN} characters, so it cannot be guessed on the LAN",
            param_hint="--lan-token",
        )
    lan_settings = replace(_lan(lan), token=lan_token) if lan else None
    from store_client import lean

    lean.defer()  # before websockets and pydantic are imported: 2.5 MB less idle RSS
    from passline.runtime import run_until_signal, setup_logging
    from store_client.daemon import ClientSettings, StoreClient
    from store_client.errors import SpoolError
    from store_client.transport_policy import BadPattern, TransportPolicy
    from store_client.worker import WorkerSettings

    try:
        transports = TransportPolicy.with_extra(allow_transport)
    except BadPattern as exc:
        raise click.BadParameter(str(exc), param_hint="--allow-transport") from None

    setup_logging(log_level)
    settings = ClientSettings(
        broker=broker,
        store_id=store_id,
        token=token,
        spool_dir=spool,
        ca_file=ca,
        status_port=status_port or None,
        workers=WorkerSettings(transports=transports),
        clock_skew_s=clock_skew_s,
        lan=lan_settings,
    )

    async def main() -> None:
        await StoreClient(settings).run()

    try:
        # The plain asyncio loop: the daemon moves a few frames a second, where uvloop
        # buys nothing and costs ~1.5 MB of RSS (DESIGN.md §7: under 40 MB idle).
        run_until_signal(main(), use_uvloop=False)
    except* SpoolError as group:
        raise click.ClickException(str(group.exceptions[0])) from None
    except* OSError as group:
        raise click.ClickException(f"cannot start: {group.exceptions[0]}") from None


def _lan(value: str) -> EdgeSettings:
    host, sep, port = value.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise click.BadParameter(
            f"expected HOST:PORT (e.g. 0.0.0.0:8088), got {value!r}", param_hint="--lan"
        )
    return EdgeSettings(host, int(port))


def _clock_skew_s() -> float:
    raw = os.environ.get(CLOCK_SKEW_ENV, "").strip()
    try:
        skew = float(raw) if raw else 0.0
    except ValueError:
        skew = math.nan
    if not math.isfinite(skew):
        raise click.BadParameter(f"expected seconds, got {raw!r}", param_hint=CLOCK_SKEW_ENV)
    return skew


__all__ = ["store_client"]
