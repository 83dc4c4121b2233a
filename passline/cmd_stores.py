"""``passline stores apply stores.toml``: push store configs over REST (DESIGN.md §5.1).

A thin REST client: each ``[stores.ID]`` table is checked against ``StoreConfig`` here
(a store that fails is not sent, the others are), then PUT to
``/v1/stores/ID/config``. One line per store; exit 1 if any store failed.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import httpx
from pydantic import ValidationError

from protocol.config import StoreConfig
from protocol.webhooks import WebhookCreate

TIMEOUT_S = 15.0
#: Answers after which the remaining stores would fail the same way: stop sending.
FATAL_STATUSES = (401, 403)


class Status(StrEnum):
    OK = "ok"  # applied: the broker answered with the new version
    VALID = "valid"  # --dry-run: passed the local check
    INVALID = "invalid"  # failed the local check: not sent
    ERROR = "error"  # the broker refused it, or could not be reached


@dataclass(frozen=True, slots=True)
class Outcome:
    store_id: str
    status: Status
    text: str
    fatal: bool = False


@click.group("stores")
def stores() -> None:
    """Manage store configurations (printers, stations, routing)."""


@stores.command("apply")
@click.argument("stores_file", metavar="STORES_TOML", type=click.Path(path_type=Path))
@click.option(
    "--broker",
    envvar="PASSLINE_BROKER_HTTP",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="The broker's REST address, http(s)://HOST:PORT.",
)
@click.option("--token", envvar="PASSLINE_TOKEN", help="Token with scope hq.")
@click.option("--dry-run", is_flag=True, help="Only check the file and print what would be sent.")
@click.option("--only", "only", multiple=True, metavar="STORE_ID", help="Apply only these stores.")
def apply(
    stores_file: Path, broker: str, token: str | None, dry_run: bool, only: tuple[str, ...]
) -> None:
    """PUT each [stores.ID] table of STORES_TOML to /v1/stores/ID/config, then add
    each [webhooks.NAME] subscription the broker does not have yet.

    Prints one line per store: `s-001  ok  version 3`, or `error` with the status and
    each failing field's path. A store that fails the local check is not sent.
    """
    tables = _select(load_stores(stores_file), only)
    if not dry_run and not token:
        raise click.UsageError("--token (or PASSLINE_TOKEN) is required, scope hq")
    if not broker.startswith(("http://", "https://")):
        raise click.BadParameter("expected http(s)://HOST:PORT", param_hint="--broker")
    failed = _apply_all(tables, broker, token or "", dry_run)
    hooks = {} if only else load_webhooks(stores_file)
    if hooks and _apply_webhooks(hooks, broker, token or "", dry_run):
        failed = True
    if failed:
        click.get_current_context().exit(1)


def load_stores(path: Path) -> dict[str, Any]:
    """The ``stores`` tables of the file, else one clear error line."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path} is not valid TOML: {exc}") from None
    tables = data.get("stores")
    if not isinstance(tables, dict) or not tables:
        raise click.ClickException(f"{path}: expected one or more [stores.STORE_ID] tables")
    bad = [k for k, v in tables.items() if not isinstance(v, dict)]
    if bad:
        raise click.ClickException(f"{path}: stores.{bad[0]} must be a table")
    return tables


def _select(tables: dict[str, Any], only: tuple[str, ...]) -> dict[str, Any]:
    missing = [s for s in only if s not in tables]
    if missing:
        raise click.ClickException(f"no [stores.{missing[0]}] in the file")
    return {k: v for k, v in tables.items() if not only or k in only}


def _apply_all(tables: dict[str, Any], broker: str, token: str, dry_run: bool) -> bool:
    width = max(len(s) for s in tables)
    failed = False
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=broker, headers=headers, timeout=TIMEOUT_S) as http:
        for i, (store_id, table) in enumerate(tables.items()):
            outcome = check(store_id, table)
            if outcome is None and dry_run:
                outcome = _dry(store_id, table)
            elif outcome is None:
                outcome = put_config(http, store_id, table)
            click.echo(f"{outcome.store_id:<{width}}  {outcome.status:<7}  {outcome.text}")
            failed |= outcome.status in (Status.INVALID, Status.ERROR)
            left = len(tables) - i - 1
            if outcome.fatal and left:
                raise click.ClickException(f"stopped: {left} store(s) not sent")
    return failed


def check(store_id: str, table: dict[str, Any]) -> Outcome | None:
    """``None`` when the table is a valid ``StoreConfig``, else the ``invalid`` outcome."""
    try:
        StoreConfig.model_validate(table)
    except ValidationError as exc:
        paths = [_field(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        return Outcome(store_id, Status.INVALID, "; ".join(paths) + " (not sent)")
    return None


def _dry(store_id: str, table: dict[str, Any]) -> Outcome:
    body = json.dumps(table, ensure_ascii=False, sort_keys=False)
    return Outcome(store_id, Status.VALID, f"would PUT {config_path(store_id)} {body}")


def config_path(store_id: str) -> str:
    return f"/v1/stores/{quote(store_id, safe='')}/config"


def put_config(http: httpx.Client, store_id: str, table: dict[str, Any]) -> Outcome:
    try:
        r = http.put(config_path(store_id), json=table)
    except httpx.HTTPError as exc:
        return Outcome(store_id, Status.ERROR, f"cannot reach {http.base_url}: {exc}", fatal=True)
    if r.status_code == 200:
        return Outcome(store_id, Status.OK, f"version {r.json().get('version')}")
    return Outcome(
        store_id, Status.ERROR, describe_problem(r), fatal=r.status_code in FATAL_STATUSES
    )


def describe_problem(r: httpx.Response) -> str:
    """``422 printers.0.transport: …`` from a problem+json answer (RFC 9457)."""
    try:
        body = r.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    errors = [e for e in body.get("errors") or () if isinstance(e, dict)]
    if errors:
        text = "; ".join(_field(str(e.get("path", "")), str(e.get("msg", ""))) for e in errors)
    else:
        text = str(body.get("detail") or body.get("title") or r.reason_phrase)
    return f"{r.status_code} {text}"


def _field(path: str, msg: str) -> str:
    return f"{path}: {msg}" if path else msg


# -- webhooks (docs/webhooks.md) -----------------------------------------------------------
WEBHOOK_KEYS = frozenset({"url", "events", "stores", "secret_env"})


def load_webhooks(path: Path) -> dict[str, dict[str, Any]]:
    """The file's ``[webhooks.NAME]`` tables (none: empty); the file was read already."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    tables = data.get("webhooks") or {}
    if not isinstance(tables, dict) or not all(isinstance(v, dict) for v in tables.values()):
        raise click.ClickException(f"{path}: webhooks.NAME must be tables")
    return tables


def webhook_body(name: str, table: dict[str, Any]) -> dict[str, Any]:
    """The ``POST /v1/webhooks`` body of one table: the secret comes from the environment
    variable ``secret_env`` names, never from the file (it would end up in git)."""
    unknown = sorted(set(table) - WEBHOOK_KEYS)
    if "secret" in unknown:
        raise click.ClickException(
            f"webhooks.{name}: put the secret in an environment variable and name it "
            "with secret_env, not in the file"
        )
    if unknown:
        raise click.ClickException(f"webhooks.{name}: unknown key(s) {', '.join(unknown)}")
    env = table.get("secret_env")
    secret = os.environ.get(env) if isinstance(env, str) else None
    if not secret:
        raise click.ClickException(f"webhooks.{name}: secret_env must name a set variable")
    body = {k: v for k, v in table.items() if k in ("url", "events", "stores")}
    try:
        WebhookCreate.model_validate({**body, "secret": secret})
    except ValidationError as exc:
        paths = [_field(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        raise click.ClickException(f"webhooks.{name}: " + "; ".join(paths)) from None
    return {**body, "secret": secret}


def _same(body: dict[str, Any], existing: dict[str, Any]) -> bool:
    stores = sorted(body["stores"]) if body.get("stores") is not None else None
    return (
        existing.get("url") == body["url"]
        and sorted(existing.get("events") or ()) == sorted(body["events"])
        and existing.get("stores") == stores
    )


def _apply_webhooks(tables: dict[str, Any], broker: str, token: str, dry_run: bool) -> bool:
    """Add each subscription the broker does not have (same url, events and stores);
    one line each. Subscriptions missing from the file are left alone."""
    bodies = {name: webhook_body(name, t) for name, t in tables.items()}
    width = max(len(n) for n in bodies) + len("webhook ")
    if dry_run:
        for name, body in bodies.items():
            shown = {k: v for k, v in body.items() if k != "secret"}
            click.echo(f"{'webhook ' + name:<{width}}  valid    would POST /v1/webhooks {shown}")
        return False
    headers = {"Authorization": f"Bearer {token}"}
    failed = False
    with httpx.Client(base_url=broker, headers=headers, timeout=TIMEOUT_S) as http:
        try:
            r = http.get("/v1/webhooks")
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach {broker}: {exc}") from None
        if r.status_code != 200:
            raise click.ClickException(f"webhooks: {describe_problem(r)}")
        existing = r.json()
        for name, body in bodies.items():
            found = next((w for w in existing if _same(body, w)), None)
            if found is not None:
                text = f"ok       exists as {found['webhook_id']}"
            else:
                r = http.post("/v1/webhooks", json=body)
                if r.status_code == 201:
                    text = f"ok       added as {r.json()['webhook_id']}"
                else:
                    failed, text = True, f"error    {describe_problem(r)}"
            click.echo(f"{'webhook ' + name:<{width}}  {text}")
    return failed
