"""Broker settings: TOML file, then ``PASSLINE_*`` environment, then flags (DESIGN.md §5.1).

```toml
[broker]            # or the same keys at the top level
http = "0.0.0.0:8080"
ws = "0.0.0.0:8765"
store = "sqlite:///var/lib/passline/broker.db"
secret = "…"        # PASSLINE_SECRET wins over the file
default_timezone = "Asia/Shanghai"   # stores whose config names no timezone (UTC if unset)
```
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker.auth import Party
from broker.errors import ConfigError
from protocol.codec import MAX_FRAME_BYTES
from protocol.timezones import DEFAULT_TIMEZONE, check_zone

ENV_PREFIX = "PASSLINE_"


@dataclass
class Settings:
    http: str = "127.0.0.1:8080"
    ws: str = "127.0.0.1:8765"
    store: str = "sqlite:///./passline-broker.db"
    secret: str | None = field(default=None, repr=False)
    max_frame: int = MAX_FRAME_BYTES
    queue_size: int = 1024
    """Outgoing messages buffered per peer; a peer past it is closed with 4001."""
    write_limit: int = 64 * 1024
    """Bytes buffered in a peer's transport before its sender waits."""
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    hello_timeout: float = 10.0
    """Seconds from TCP accept until a store link has sent its hello (else 4002); it also
    bounds every websocket handshake."""
    browser_hello_timeout: float = 5.0
    """Seconds from TCP accept until a KDS/HQ socket, unauthenticated until then, has sent
    its hello (else 4002)."""
    close_timeout: float = 10.0
    ingest_rate: float = 500.0
    """Ingest requests per second per token (0 = unlimited); batches count per order."""
    ingest_burst: int = 2000
    hello_rate: float = 50.0
    """Websocket handshakes per second per client address (0 = unlimited)."""
    hello_burst: int = 500
    store_hello_rate: float = 2.0
    """Websocket handshakes per second per store and per token (0 = unlimited): HTTP 429
    for a store link, close 4003 after a screen's hello."""
    store_hello_burst: int = 30
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks (``10.0.0.0/8``) of reverse proxies and load balancers: a
    websocket from one of them counts as the client its X-Forwarded-For names."""
    ws_max_connections: int = 50_000
    """Websocket connections per node, handshakes included (HTTP 503 past it; 0 = no cap)."""
    ws_max_per_address: int = 1000
    """Websocket connections per client address (HTTP 429 past it; 0 = no cap)."""
    max_body: int = 1024 * 1024
    """Bytes a REST request body may have (413 before reading it; bodiless methods: 0)."""
    max_batch_body: int = 8 * 1024 * 1024
    """The same for ``POST /v1/orders:batch`` (up to 500 orders)."""
    http_header_timeout: float = 10.0
    """Seconds an HTTP connection has for its request line and headers, from connect
    or from the first byte of a later request."""
    http_body_timeout: float = 30.0
    """Seconds a request body has to arrive in full (else 408)."""
    http_keepalive_timeout: int = 5
    """Seconds an idle keep-alive HTTP connection is kept."""
    http_max_connections: int = 10_000
    """Open HTTP connections (past it requests get 503; 0 = no cap)."""
    link_msg_rate: float = 500.0
    """Messages per second one websocket link may send (0 = unlimited); past the burst
    the link is closed with 4008 (DESIGN.md §8.5)."""
    link_msg_burst: int = 5000
    stream_max_len: int = 10_000
    drain_timeout: float = 20.0
    tls_cert: str | None = None
    tls_key: str | None = None
    public_ws: str | None = None
    """The websocket base the browser pages are told to use (``GET /kds/config.json``,
    DESIGN.md §8.4), e.g. ``wss://passline.example.com``; unset: this broker's ws port on
    the host the page was loaded from."""
    token_issuer: str = "passline"
    """``iss`` of the tokens this broker takes (and ``passline token issue`` writes)."""
    token_audience: str = "passline"
    """``aud`` of the tokens this broker takes: name the deployment (``acme-prod``) so a
    token made for another one is refused even where a secret was shared."""
    legacy_tokens: bool = False
    """Also take tokens without ``iss``/``aud`` (issued before passline put them in):
    for an upgrade, until every client has a new token."""
    webhook_timeout: float = 10.0
    """Seconds a webhook receiver has to answer an attempt (docs/webhooks.md)."""
    webhook_retry_max: float = 600.0
    """The longest wait between two attempts of one delivery (backoff doubles up to it)."""
    webhook_dead_after: float = 3 * 86400.0
    """A delivery still failing this long after it was queued is dead-lettered."""
    webhook_retention: float = 7 * 86400.0
    """How long delivered and dead-lettered deliveries stay in the log (and replayable)."""
    webhook_offline_after: float = 60.0
    """A store's link must be down this long before ``store.offline`` is sent (and only
    then is its return a ``store.online``): a reconnect blip pages nobody."""
    default_timezone: str = DEFAULT_TIMEZONE
    """IANA zone of every store whose config names none (DESIGN.md §8.7): their chits and
    screens show times on its clock. Give every node of a deployment the same one."""
    log_level: str = "info"
    stall_log_ms: float = 0.0
    """Log the event loop's stack whenever it has not turned for this long (0: off;
    ``broker/stalls.py``): what delays every link, found under the real load."""

    def check_timezone(self) -> str:
        """``default_timezone``, or ``ConfigError`` if it names no zone."""
        try:
            return check_zone(self.default_timezone)
        except ValueError as exc:
            raise ConfigError(f"default_timezone: {exc}") from None

    def token_party(self) -> Party:
        return Party(self.token_issuer, self.token_audience, self.legacy_tokens)

    def http_addr(self) -> tuple[str, int]:
        return split_addr(self.http, "http")

    def ws_addr(self) -> tuple[str, int]:
        return split_addr(self.ws, "ws")


def split_addr(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"--{what} expects HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def load_settings(config_file: Path | None = None, **flags: Any) -> Settings:
    """File < environment < flags; ``None`` flags are ignored."""
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(_read_toml(config_file))
    names = {f.name: f for f in dataclasses.fields(Settings)}
    for name in names:
        env = os.environ.get(ENV_PREFIX + name.upper())
        if env is not None and env != "":
            values[name] = env
    values.update({k: v for k, v in flags.items() if v is not None})
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(f"unknown broker setting(s): {', '.join(unknown)}")
    try:
        settings = Settings(**{k: _coerce(names[k].type, v, k) for k, v in values.items()})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad broker setting: {exc}") from None
    settings.check_timezone()
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    section = data.get("broker", data)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [broker] must be a table")
    return {k.replace("-", "_"): v for k, v in section.items() if not isinstance(v, dict)}


def _coerce(kind: Any, value: Any, name: str) -> Any:
    text = str(kind)
    if "tuple" in text:  # a TOML array, or a comma-separated string (environment)
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
            raise ValueError(f"{name} must be a list of strings")
        return tuple(i.strip() for i in items if i.strip())
    if text == "bool":  # a TOML boolean, or true/false/1/0/yes/no (environment)
        return _boolean(value, name)
    if "float" in text:
        return float(value)
    if "int" in text and "str" not in text:
        return int(value)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value


def _boolean(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, got {value!r}")
