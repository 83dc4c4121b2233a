"""Tokens: HS256 JWTs with a scope (DESIGN.md §5.2).

Claims: ``sub`` (who), ``scope`` (store|kds|hq|ingest|board), ``store`` (store, kds and
board tokens), ``stores`` (ingest tokens limited to some stores; absent means every
store), ``station`` (kds tokens limited to one station), ``exp``, ``iat``, ``jti`` (the
id a revocation names),
``iss`` and ``aud`` (the broker's ``token_issuer`` and ``token_audience``: a token made for
another deployment is refused even where the secret is shared). PyJWT checks the HMAC with
``hmac.compare_digest`` (constant time). Tokens are never logged: log ``jti`` instead.

Refusals, all ``Unauthorized`` (401; on a websocket 1008, or 4501 for the last two): bad
signature or claims, wrong ``iss``/``aud``, ``TokenExpired``, ``TokenRevoked``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import jwt

from broker.errors import ConfigError, Forbidden, TokenExpired, TokenRevoked, Unauthorized

ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32
ISSUER = AUDIENCE = "passline"
#: The longest a token may be issued for: a revocation that names only a ``jti`` is kept
#: this long, which outlives any token issued before it.
MAX_TTL_S = 400 * 86400
REQUIRED = ("exp", "sub", "scope", "jti")
_TTL = re.compile(r"^(\d+)([smhdw]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class Scope(StrEnum):
    STORE = "store"
    KDS = "kds"
    HQ = "hq"
    INGEST = "ingest"
    BOARD = "board"  # read-only: one store's pickup board (/v1/ws/board), nothing else


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


@dataclass(frozen=True, slots=True)
class Party:
    """Who signs tokens (``iss``) and for whom (``aud``): the broker's ``token_issuer`` and
    ``token_audience``. ``legacy``: also take tokens that carry neither (issued before
    passline put them in); a token that carries one must match it either way."""

    issuer: str = ISSUER
    audience: str = AUDIENCE
    legacy: bool = False


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
    party: Party = Party(),
) -> str:
    """A signed token. For an ingest token ``store`` means ``stores=[store]``: a token
    named for one store is never good for every store."""
    scope = Scope(scope)
    if scope is Scope.INGEST and store:
        stores, store = [store, *(stores or [])], None
    _check_shape(scope, store, stores, station, ttl_s)
    issued = int(now if now is not None else time.time())
    claims: dict[str, object] = {
        "sub": sub or f"{scope.value}:{store or 'all'}",
        "scope": scope.value,
        "iat": issued,
        "exp": issued + ttl_s,
        "jti": secrets.token_hex(8),
        "iss": party.issuer,
        "aud": party.audience,
    }
    if store:
        claims["store"] = store
    if stores:
        claims["stores"] = list(dict.fromkeys(stores))
    if station:
        claims["station"] = station
    return jwt.encode(claims, check_secret(secret), algorithm=ALGORITHM)


#: Scopes bound to one store (the ``store`` claim).
STORE_BOUND = (Scope.STORE, Scope.KDS, Scope.BOARD)


def _check_shape(
    scope: Scope, store: str | None, stores: list[str] | None, station: str | None, ttl_s: int
) -> None:
    if scope in STORE_BOUND and not store:
        raise ValueError(f"a {scope.value} token needs a store")
    if store and scope not in STORE_BOUND:
        raise ValueError(f"a {scope.value} token takes no store")
    if stores and scope is not Scope.INGEST:
        raise ValueError("only ingest tokens take a list of stores")
    if station and scope is not Scope.KDS:
        raise ValueError("only kds tokens take a station")
    if not 0 < ttl_s <= MAX_TTL_S:
        raise ValueError(f"a token lives at most {MAX_TTL_S // 86400}d, got {ttl_s} s")


def verify_token(secret: str, token: str, party: Party = Party()) -> Claims:
    """Claims of a valid token, else ``Unauthorized`` (never echoing the token)."""
    try:
        raw = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": list(REQUIRED), "verify_aud": False, "verify_iss": False},
        )
    except jwt.ExpiredSignatureError:
        raise TokenExpired("token expired") from None
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid token: {type(exc).__name__}") from None
    _check_party(raw, party)
    try:
        return _claims(raw)
    except (ValueError, TypeError, KeyError):
        raise Unauthorized("invalid token claims") from None


def _check_party(raw: dict[str, object], party: Party) -> None:
    """``iss`` and ``aud`` as RFC 7519 §4.1.1/§4.1.3 say (``aud``: a string or a list)."""
    iss, aud = raw.get("iss"), raw.get("aud")
    if iss is None and aud is None and party.legacy:
        return
    if iss != party.issuer:
        raise Unauthorized("invalid token: wrong or missing issuer (iss)")
    if aud != party.audience and not (isinstance(aud, list) and party.audience in aud):
        raise Unauthorized("invalid token: not for this broker (aud)")


def revocable(secret: str, token: str) -> tuple[str, int]:
    """``(jti, exp)`` of a token signed with ``secret``, expired or not: what
    ``passline token revoke`` needs when it is given the token itself."""
    try:
        raw = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "jti"], "verify_exp": False, "verify_aud": False},
        )
        return str(raw["jti"]), int(str(raw["exp"]))
    except (jwt.PyJWTError, ValueError):
        raise Unauthorized("not a token signed with this secret") from None


class TokenCache:
    """Verified tokens by their SHA-256 (a JWT check costs ~0.3 ms; ingest sends one per
    request). Keyed by digest, so a lookup reveals nothing about stored tokens; expiry and
    the deny-list (``revoked``, a set lookup) are checked on every hit."""

    def __init__(
        self,
        secret: str,
        size: int = 10_000,
        party: Party = Party(),
        revoked: Callable[[str], bool] = lambda jti: False,
    ) -> None:
        self._secret = secret
        self._size = size
        self._party = party
        self.revoked = revoked
        self._known: dict[bytes, Claims] = {}

    def verify(self, token: str, now: float | None = None) -> Claims:
        key = hashlib.sha256(token.encode()).digest()
        claims = self._known.get(key)
        if claims is None:
            claims = verify_token(self._secret, token, self._party)
            if len(self._known) >= self._size:
                self._known.clear()
            self._known[key] = claims
        ended = ended_by(claims, self.revoked, now if now is not None else time.time())
        if ended is not None:
            self._known.pop(key, None)
            raise ended
        return claims


def ended_by(claims: Claims, revoked: Callable[[str], bool], now: float) -> Unauthorized | None:
    """Why a once-valid token no longer is (revoked, expired), or None."""
    if revoked(claims.jti):
        return TokenRevoked("token revoked")
    if claims.exp <= now:
        return TokenExpired("token expired")
    return None


def _claims(raw: dict[str, object]) -> Claims:
    scope = Scope(str(raw["scope"]))
    store, stores, station = raw.get("store"), raw.get("stores"), raw.get("station")
    if scope in STORE_BOUND and not isinstance(store, str):
        raise ValueError("store claim missing")
    if stores is not None and not (
        isinstance(stores, list) and all(isinstance(s, str) for s in stores)
    ):
        raise ValueError("stores claim must be a list of ids")
    ids = tuple(str(s) for s in stores) if isinstance(stores, list) else None
    if scope is Scope.INGEST and isinstance(store, str):
        # fail closed: an ingest token that names a store is for that store only
        ids, store = (store, *(ids or ())), None
    return Claims(
        sub=str(raw["sub"]),
        scope=scope,
        jti=str(raw["jti"]),
        exp=int(str(raw["exp"])),
        store=store if isinstance(store, str) else None,
        stores=ids,
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
