"""``passline token issue`` and ``passline token revoke`` (DESIGN.md §5.1, §8.3). Wiring only."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from broker.auth import (
    MAX_TTL_S,
    STORE_BOUND,
    Scope,
    check_secret,
    issue_token,
    parse_ttl,
    revocable,
)
from broker.config import Settings, load_settings
from broker.errors import BrokerError

#: A token has three dot-separated parts; a jti (``secrets.token_hex``) none.
TOKEN_SHAPE = re.compile(r"^[\w-]+\.[\w-]+\.[\w-]+$")
JTI_SHAPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")

config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The broker's TOML file (secret, store, token_issuer/token_audience); "
    "PASSLINE_* variables win.",
)


@click.group("token")
def token() -> None:
    """Tokens for store clients, KDS screens, HQ, ingest channels and pickup boards."""


@token.command("issue")
@click.option("--scope", required=True, type=click.Choice([s.value for s in Scope]))
@click.option(
    "--store",
    "stores",
    multiple=True,
    help="Store id (required for store, kds and board; repeat to limit an ingest token).",
)
@click.option("--station", help="Limit a kds token to one station.")
@click.option(
    "--ttl", default="30d", show_default=True, help="Lifetime: 30d, 12h, 15m, 3600s (≤ 400d)."
)
@click.option("--sub", help="Subject recorded in the token (who it is for).")
@config_option
def issue(
    scope: str,
    stores: tuple[str, ...],
    station: str | None,
    ttl: str,
    sub: str | None,
    config_file: Path | None,
) -> None:
    """Print a token, and nothing else, on stdout.

    An ingest token without --store may use every store; with --store only those. A
    board token shows one store's pickup board and reads nothing else."""
    try:
        ttl_s = parse_ttl(ttl)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--ttl") from None
    settings = _settings(config_file)
    single = scope in STORE_BOUND
    if single and len(stores) != 1:
        raise click.UsageError(f"a {scope} token needs exactly one --store")
    if stores and scope == Scope.HQ:
        raise click.UsageError("an hq token takes no --store: it reads every store")
    if station and scope != Scope.KDS:
        raise click.UsageError("--station is only for kds tokens")
    try:
        text = issue_token(
            _secret(settings),
            scope,
            store=stores[0] if single else None,
            stores=list(stores) if not single and stores else None,
            station=station,
            ttl_s=ttl_s,
            sub=sub,
            party=settings.token_party(),
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(text)


@token.command("revoke")
@click.argument("jti")
@config_option
def revoke(jti: str, config_file: Path | None) -> None:
    """Refuse a token from now on; its open sockets close with 4501.

    JTI is the token's id (the broker logs it), or the token itself. The entry goes to the
    deny-list in the broker's storage (`store` of --config or PASSLINE_STORE: its sqlite
    file or its redis); every running broker node reads it within a second or two. It is
    kept until the token expires: given a bare id, as long as any token may live (400d).
    """
    settings = _settings(config_file)
    if TOKEN_SHAPE.match(jti):
        try:
            jti, until = revocable(_secret(settings), jti)
        except BrokerError as exc:
            raise click.BadParameter(exc.detail, param_hint="JTI") from None
    elif JTI_SHAPE.match(jti):
        until = int(time.time()) + MAX_TTL_S
    else:
        raise click.BadParameter("expected a token id (jti) or a token", param_hint="JTI")
    expires = datetime.fromtimestamp(until, UTC).isoformat(timespec="seconds")
    if until <= time.time():
        click.echo(f"jti={jti} expired at {expires}: no broker takes it, nothing to revoke")
        return
    where = asyncio.run(_deny(settings.store, jti, until))
    click.echo(f"revoked jti={jti} until {expires} in {where}")


async def _deny(store: str, jti: str, until: int) -> str:
    from broker.storage import open_denylist, safe_url  # sqlite3 / redis only here

    try:
        async with open_denylist(store) as denylist:
            await denylist.deny(jti, until)
    except BrokerError as exc:
        raise click.ClickException(exc.detail) from None
    return safe_url(store)


def _settings(config_file: Path | None) -> Settings:
    try:
        return load_settings(config_file)
    except BrokerError as exc:
        raise click.ClickException(exc.detail) from None


def _secret(settings: Settings) -> str:
    try:
        return check_secret(settings.secret)
    except BrokerError as exc:
        raise click.ClickException(exc.detail) from None
