"""Webhooks (DESIGN.md §8.4, docs/webhooks.md): subscriptions, the event body, the
delivery log, and the signature both sides compute.

A delivery is ``POST url`` with the event as its JSON body and three headers:
``Passline-Event-Id``, ``Passline-Timestamp`` (unix seconds) and ``Passline-Signature:
v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`` — the timestamp is signed with
the body, so a receiver that refuses timestamps older than its window refuses replays.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, StringConstraints, field_validator

from protocol.base import Frozen, Ident, Timestamp

SIGNATURE_VERSION = "v1"
#: A receiver should refuse a delivery whose timestamp is further than this from its clock.
REPLAY_WINDOW_S = 300
EVENT_ID = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class EventType(StrEnum):
    JOB_STATE = "job.state"
    PRINTER_ALERT = "printer.alert"
    PRINTER_RECOVERED = "printer.recovered"
    ORDER_READY = "order.ready"
    STORE_OFFLINE = "store.offline"
    STORE_ONLINE = "store.online"


class WebhookCreate(Frozen):
    """``POST /v1/webhooks`` body (hq scope)."""

    url: Annotated[str, StringConstraints(min_length=8, max_length=2048)]
    """Where deliveries are POSTed: ``https://…`` (or ``http://…``)."""
    events: tuple[EventType, ...] = Field(min_length=1, max_length=len(EventType))
    secret: Annotated[str, StringConstraints(min_length=16, max_length=256)]
    """Signs every delivery; never shown again (``GET /v1/webhooks`` leaves it out)."""
    stores: tuple[Ident, ...] | None = Field(default=None, min_length=1, max_length=20_000)
    """Only these stores' events (a store group); absent: every store."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username or parts.password:
            raise ValueError("must not carry a user or password (sign with the secret)")
        return url

    @field_validator("events")
    @classmethod
    def _unique(cls, events: tuple[EventType, ...]) -> tuple[EventType, ...]:
        if len(set(events)) != len(events):
            raise ValueError("lists an event type twice")
        return events


class Webhook(Frozen):
    """A subscription as ``GET /v1/webhooks`` shows it (without its secret)."""

    webhook_id: Ident
    url: str
    events: tuple[EventType, ...]
    stores: tuple[Ident, ...] | None = None
    created_at: Timestamp


class WebhookCreated(Frozen):
    webhook_id: Ident


class WebhookEvent(Frozen):
    """The body of every delivery."""

    id: EVENT_ID
    """Stable for one happening: a receiver dedupes on it (deliveries are at least once)."""
    type: EventType
    created_at: Timestamp
    store_id: Ident
    data: dict[str, Any]


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # not delivered yet; retried with backoff
    DELIVERED = "delivered"  # the receiver answered 2xx
    DEAD = "dead"  # retried until ``webhook_dead_after_s``: dead-lettered; replay resends


class Delivery(Frozen):
    """One event for one subscription (``GET /v1/webhooks/{id}/deliveries``)."""

    event_id: EVENT_ID
    type: EventType
    store_id: Ident
    status: DeliveryStatus
    attempts: int
    last_error: str | None = None
    created_at: Timestamp
    updated_at: Timestamp
    next_attempt_at: Timestamp | None = None
    """When the next attempt is due (pending deliveries only)."""


class ReplayRequest(Frozen):
    """``POST /v1/webhooks/{id}/replay``: the dead-lettered deliveries created since
    ``from`` (all of them when absent), or the events named."""

    from_: Timestamp | None = Field(default=None, alias="from")
    event_ids: tuple[EVENT_ID, ...] | None = Field(default=None, min_length=1, max_length=1000)


class ReplayResult(Frozen):
    replayed: int
    """Deliveries queued again."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Passline-Signature`` header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def verify(
    secret: str,
    header: str,
    timestamp: str,
    body: bytes,
    now: float,
    window_s: int = REPLAY_WINDOW_S,
) -> bool:
    """What a receiver checks: a well-formed, recent timestamp and a matching signature
    (compared in constant time; any of several ``v1=`` values may match)."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > window_s:
        return False
    want = signature(secret, int(timestamp), body)
    return any(hmac.compare_digest(want, part.strip()) for part in header.split(","))
