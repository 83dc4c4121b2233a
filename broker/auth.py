"""Tokens: HS256 JWTs with a scope (DESIGN.md §5.2).

Claims: ``sub`` (who), ``scope`` (store|kds|hq|ingest), ``store`` (store and kds tokens),
``stores`` (ingest tokens limited to some stores; absent means every store), ``station``
(kds tokens limited to one station), ``exp``, ``iat``, ``jti``. PyJWT checks the HMAC with
``hmac.compare_digest`` (constant time). Tokens are never logged: log ``jti`` instead.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

import jwt

from broker.errors import ConfigError, Forbidden, Unauthorized

ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32
_TTL = re.compile(r"^(\d+)([smhdw]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class Scope(StrEnum):
    STORE = "store"
    KDS = "kds"
    HQ = "hq"
    INGEST = "ingest"


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    scope: Scope
    jti: str
    exp: int
    store: str | None = None
    stores: tuple[str, ...] | None = None
    station: str | None = None

    def may_write_orders(self, store_id: str) -> bool:
        """ingest: submit/amend/cancel/reprint for its stores; hq may reprint too."""
        if self.scope is not Scope.INGEST:
            return False
        return self.stores is None or store_id in self.stores

    def may_read_store(self, store_id: str) -> bool:
        """hq reads everything; ingest reads orders and jobs of its stores."""
        if self.scope is Scope.HQ:
            return True
        return self.may_write_orders(store_id)

    def require(self, allowed: bool, what: str) -> None:
        if not allowed:
            raise Forbidden(f"a {self.scope.value} token may not {what}")


def parse_ttl(text: str) -> int:
    """``30d``, ``12h``, ``15m``, ``3600`` / ``3600s`` → seconds."""
    m = _TTL.match(text.strip())
    if m is None or int(m.group(1)) <= 0:
        raise ValueError(f"expected a duration like 30d, 12h, 15m or 3600s, got {text!r}")
    return int(m.group(1)) * _UNITS[m.group(2)]


def check_secret(secret: str | None) -> str:
    if not secret:
        raise ConfigError("no signing secret: set PASSLINE_SECRET or `secret` in the config file")
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(f"the signing secret must be at least {MIN_SECRET_BYTES} bytes")
    return secret


def issue_token(
    secret: str,
    scope: Scope | str,
    *,
    store: str | None = None,
    stores: list[str] | None = None,
    station: str | None = None,
    ttl_s: int = 30 * 86400,
    sub: str | None = None,
    now: float | None = None,
) -> str:
    scope = Scope(scope)
    if scope in (Scope.STORE, Scope.KDS) and not store:
        raise ValueError(f"a {scope.value} token needs a store")
    if station and scope is not Scope.KDS:
        raise ValueError("only kds tokens take a station")
    issued = int(now if now is not None else time.time())
    claims: dict[str, object] = {
        "sub": sub or f"{scope.value}:{store or 'all'}",
        "scope": scope.value,
        "iat": issued,
        "exp": issued + ttl_s,
        "jti": secrets.token_hex(8),
    }
    if store:
        claims["store"] = store
    if stores:
        claims["stores"] = list(stores)
    if station:
        claims["station"] = station
    return jwt.encode(claims, check_secret(secret), algorithm=ALGORITHM)


def verify_token(secret: str, token: str) -> Claims:
    """Claims of a valid token, else ``Unauthorized`` (never echoing the token)."""
    try:
        raw = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub", "scope", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid token: {type(exc).__name__}") from None
    try:
        return _claims(raw)
    except (ValueError, TypeError, KeyError):
        raise Unauthorized("invalid token claims") from None


class TokenCache:
    """Verified tokens by their SHA-256 (a JWT check costs ~0.3 ms; ingest sends one per
    request). Keyed by digest, so a lookup reveals nothing about stored tokens; expiry is
    re-checked on every hit."""

    def __init__(self, secret: str, size: int = 10_000) -> None:
        self._secret = secret
        self._size = size
        self._known: dict[bytes, Claims] = {}

    def verify(self, token: str, now: float | None = None) -> Claims:
        key = hashlib.sha256(token.encode()).digest()
        claims = self._known.get(key)
        if claims is None:
            claims = verify_token(self._secret, token)
            if len(self._known) >= self._size:
                self._known.clear()
            self._known[key] = claims
        if claims.exp <= (now if now is not None else time.time()):
            self._known.pop(key, None)
            raise Unauthorized("token expired")
        return claims


def _claims(raw: dict[str, object]) -> Claims:
    scope = Scope(str(raw["scope"]))
    store = raw.get("store")
    stores = raw.get("stores")
    station = raw.get("station")
    if scope in (Scope.STORE, Scope.KDS) and not isinstance(store, str):
        raise ValueError("store claim missing")
    if stores is not None and not (
        isinstance(stores, list) and all(isinstance(s, str) for s in stores)
    ):
        raise ValueError("stores claim must be a list of ids")
    return Claims(
        sub=str(raw["sub"]),
        scope=scope,
        jti=str(raw["jti"]),
        exp=int(str(raw["exp"])),
        store=store if isinstance(store, str) else None,
        stores=tuple(stores) if isinstance(stores, list) else None,
        station=station if isinstance(station, str) else None,
    )


def bearer(header: str | None) -> str:
    """The token of an ``Authorization: Bearer …`` header, else ``Unauthorized``."""
    if not header:
        raise Unauthorized("missing Authorization: Bearer token")
    kind, _, token = header.partition(" ")
    if kind.lower() != "bearer" or not token.strip():
        raise Unauthorized("expected Authorization: Bearer <token>")
    return token.strip()
