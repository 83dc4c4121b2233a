"""``passline token issue``: print a signed token (DESIGN.md §5.1, §6). Wiring only."""

from __future__ import annotations

import os
from pathlib import Path

import click

from broker.auth import Scope, check_secret, issue_token, parse_ttl
from broker.config import load_settings
from broker.errors import BrokerError


@click.group("token")
def token() -> None:
    """Tokens for store clients, KDS screens, HQ and ingest channels."""


@token.command("issue")
@click.option("--scope", required=True, type=click.Choice([s.value for s in Scope]))
@click.option(
    "--store",
    "stores",
    multiple=True,
    help="Store id (required for store and kds; repeat to limit an ingest token).",
)
@click.option("--station", help="Limit a kds token to one station.")
@click.option("--ttl", default="30d", show_default=True, help="Lifetime: 30d, 12h, 15m, 3600s.")
@click.option("--sub", help="Subject recorded in the token (who it is for).")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Broker TOML file to read the secret from (PASSLINE_SECRET wins).",
)
def issue(
    scope: str,
    stores: tuple[str, ...],
    station: str | None,
    ttl: str,
    sub: str | None,
    config_file: Path | None,
) -> None:
    """Print a token, and nothing else, on stdout."""
    try:
        ttl_s = parse_ttl(ttl)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--ttl") from None
    try:
        secret = os.environ.get("PASSLINE_SECRET") or load_settings(config_file).secret
        secret = check_secret(secret)
    except BrokerError as exc:
        raise click.ClickException(exc.detail) from None
    single = scope in (Scope.STORE, Scope.KDS)
    if single and len(stores) != 1:
        raise click.UsageError(f"a {scope} token needs exactly one --store")
    if station and scope != Scope.KDS:
        raise click.UsageError("--station is only for kds tokens")
    try:
        text = issue_token(
            secret,
            scope,
            store=stores[0] if single else None,
            stores=list(stores) if not single and stores else None,
            station=station,
            ttl_s=ttl_s,
            sub=sub,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(text)
