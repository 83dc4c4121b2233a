"""``passline rollout``: stage a config change to a ring of stores, promote it, roll it
back — one command each (docs/rollout.md). A thin client of ``/v1/releases``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import httpx

from passline.cmd_stores import TIMEOUT_S, describe_problem

BROKER = click.option(
    "--broker",
    envvar="PASSLINE_BROKER_HTTP",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="The broker's REST address, http(s)://HOST:PORT.",
)
TOKEN = click.option("--token", envvar="PASSLINE_TOKEN", help="Token with scope hq.")


@click.group("rollout")
def rollout() -> None:
    """Gray release: stage config changes to store rings, promote, roll back."""


def _call(broker: str, token: str | None, method: str, path: str, body: Any = None) -> Any:
    if not token:
        raise click.UsageError("--token (or PASSLINE_TOKEN) is required, scope hq")
    if not broker.startswith(("http://", "https://")):
        raise click.BadParameter("expected http(s)://HOST:PORT", param_hint="--broker")
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=broker, headers=headers, timeout=TIMEOUT_S) as http:
            r = http.request(method, path, json=body)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach {broker}: {exc}") from None
    if not r.is_success:
        raise click.ClickException(describe_problem(r))
    return r.json()


def _line(release: dict[str, Any]) -> str:
    where = "every store" if release["everywhere"] else "rings " + ",".join(release["rings"])
    return (
        f"{release['release_id']}  {release['state']}  {where}  "
        f"{release['stores']} store(s)  {json.dumps(release['patch'], ensure_ascii=False)}"
    )


@rollout.command("stage")
@click.argument("release_id")
@click.option("--ring", "rings", multiple=True, required=True, help="A ring it goes to first.")
@click.option("--patch", "patch_text", help='A JSON merge patch: \'{"chit": {"header": "NEW"}}\'.')
@click.option("--patch-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@BROKER
@TOKEN
def stage(
    release_id: str,
    rings: tuple[str, ...],
    patch_text: str | None,
    patch_file: Path | None,
    broker: str,
    token: str | None,
) -> None:
    """Stage RELEASE_ID (a config patch) to the stores of --ring."""
    if (patch_text is None) == (patch_file is None):
        raise click.UsageError("give one of --patch or --patch-file")
    text = patch_file.read_text("utf-8") if patch_file is not None else str(patch_text)
    try:
        patch = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--patch") from None
    body = {"release_id": release_id, "rings": list(rings), "patch": patch}
    click.echo(_line(_call(broker, token, "POST", "/v1/releases", body)))


@rollout.command("promote")
@click.argument("release_id")
@click.option("--ring", "rings", multiple=True, help="Another ring to take it to.")
@click.option("--everywhere", is_flag=True, help="Every store.")
@BROKER
@TOKEN
def promote(
    release_id: str, rings: tuple[str, ...], everywhere: bool, broker: str, token: str | None
) -> None:
    """Take RELEASE_ID to more rings, or to every store."""
    body = {"rings": list(rings), "everywhere": everywhere}
    path = f"/v1/releases/{quote(release_id, safe='')}/promote"
    click.echo(_line(_call(broker, token, "POST", path, body)))


@rollout.command("rollback")
@click.argument("release_id")
@BROKER
@TOKEN
def rollback(release_id: str, broker: str, token: str | None) -> None:
    """Take RELEASE_ID off every store it is on (their configs are pushed live)."""
    path = f"/v1/releases/{quote(release_id, safe='')}/rollback"
    click.echo(_line(_call(broker, token, "POST", path)))


@rollout.command("status")
@BROKER
@TOKEN
def status(broker: str, token: str | None) -> None:
    """Releases, then each ring's stores and the store client versions they run."""
    for release in _call(broker, token, "GET", "/v1/releases"):
        click.echo(_line(release))
    for ring in _call(broker, token, "GET", "/v1/rings"):
        versions = ", ".join(f"{v} x{n}" for v, n in ring["client_versions"].items())
        name = ring["ring"] or "(no ring)"
        click.echo(
            f"ring {name}: {len(ring['stores'])} store(s); clients {versions}; "
            f"releases {','.join(ring['releases']) or '-'}"
        )
