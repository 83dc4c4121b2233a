"""Store configuration: printers, stations, routing (DESIGN.md §3, §6)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from protocol.base import Frozen, Ident, Text, Version
from protocol.orders import Service, Template
from protocol.timezones import ZoneName

TRANSPORT_SCHEMES = ("tcp", "serial", "usb", "file")

#: ``tcp://host:port``, ``serial:///dev/ttyUSB0?baud=19200``, ``usb://04b8:0202``,
#: ``file:///dev/usb/lp0``.
TransportUri = Annotated[
    str, StringConstraints(max_length=300, pattern=r"^(tcp|serial|usb|file)://\S+$")
]
Encoding = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{2,20}$")]
MAX_PREP_S = 86400
MAX_PREP_ENTRIES = 10_000
#: How long a line takes to prepare, in seconds (firing scheduled orders, docs/kds.md).
PrepSeconds = Annotated[int, Field(ge=0, le=MAX_PREP_S)]


class PrinterConfig(Frozen):
    """One printer in a store."""

    printer_id: Ident
    name: Text
    transport: TransportUri
    profile: Ident = "default"
    """python-escpos capability profile name."""
    width_mm: Literal[58, 80] = 80
    encoding: Encoding = "gb18030"
    """Text encoding the printer is set to; gb18030 prints ASCII and Chinese alike."""
    backup: Ident | None = None
    """Printer that takes this one's held jobs after ``failover_after_s``."""


#: A store client release, ``0.9.0``: what ``min_client_version`` compares against.
ClientVersion = Annotated[str, StringConstraints(pattern=r"^\d{1,6}(\.\d{1,6}){0,3}$")]


class ChitStyle(Frozen):
    """How kitchen chits look; a change here is what a chain stages to a ring first
    (docs/rollout.md). Protocol 2 (a protocol-1 client gets the config without it)."""

    header: Text | None = None
    """A line printed above the station name on every kitchen chit ("NEW MENU WEEK")."""
    big_items: bool = False
    """Item lines in double width and height: read at arm's length; wraps more."""


#: How long a ready order stays on the pickup board by default (docs/kds.md#pickup-board).
DEFAULT_BOARD_READY_S = 600


class BoardConfig(Frozen):
    """The customer pickup board (``/board/``, docs/kds.md#pickup-board). Protocol 2 (a
    protocol-1 client gets the config without it)."""

    names: bool = False
    """Show the order's ``customer`` under its number. Off by default: a board hangs
    where every guest reads it."""
    ready_s: int = Field(default=DEFAULT_BOARD_READY_S, ge=10, le=3600)
    """Seconds a ready order stays in the Ready column (nobody marks it collected)."""
    services: tuple[Service, ...] = ()
    """Only orders of these services are on the board (``["takeout", "pickup"]``);
    empty: every order."""


class StationConfig(Frozen):
    """A kitchen station: a KDS queue and optionally a chit printer."""

    station_id: Ident
    name: Text
    categories: tuple[Ident, ...] = ()
    printer: Ident | None = None
    """Printer for this station's chits; none means screen only."""
    templates: tuple[Template, ...] = (Template.KITCHEN,)
    """What the station prints per order revision: ``kitchen`` and/or ``label``."""
    warn_after_s: int = Field(default=300, ge=1, le=86400)
    late_after_s: int = Field(default=600, ge=1, le=86400)
    expo: bool = False
    """The expo station shows orders rolled up across stations instead of tickets."""
    prep_s: PrepSeconds | None = None
    """Prep time of this station's lines when neither ``prep_s_by_sku`` nor
    ``prep_s_by_category`` names them: a scheduled order (``due_at``) fires at ``due_at``
    minus its longest line's prep time. None: the station's lines have no prep time, and
    an order with such a line fires at submit (docs/kds.md#scheduled-orders)."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.late_after_s < self.warn_after_s:
            raise ValueError("late_after_s must be >= warn_after_s")
        bad = set(self.templates) - {Template.KITCHEN, Template.LABEL}
        if bad:
            raise ValueError(f"station templates must be kitchen or label, got {sorted(bad)}")
        if self.expo and self.categories:
            raise ValueError("an expo station takes no categories")
        return self


class StoreConfig(Frozen):
    """``PUT /v1/stores/{store_id}/config`` body; also one store of ``stores.toml``."""

    name: Text
    timezone: ZoneName | None = None
    """IANA zone of the store (``Asia/Shanghai``): chits and screens show times in it.
    None: the broker's ``default_timezone`` (itself ``UTC``), which it fills in when it
    hands the config out (DESIGN.md §8.7)."""
    printers: tuple[PrinterConfig, ...] = Field(default=(), max_length=64)
    stations: tuple[StationConfig, ...] = Field(default=(), max_length=64)
    receipt_printer: Ident | None = None
    default_station: Ident | None = None
    """Where lines go whose category no station lists; none means such orders get 422."""
    ring: Ident | None = None
    """The gray-release ring the store is in (``canary``, ``wave-1``): releases staged to
    it apply here (docs/rollout.md). None: only releases promoted to every store."""
    min_client_version: ClientVersion | None = None
    """Store clients older than this are refused at ``hello`` (4502, with the reason)."""
    chit: ChitStyle | None = None
    """Kitchen chit layout; none: the standard one."""
    board: BoardConfig | None = None
    """The customer pickup board; none: the defaults (numbers only, ready for 10 min)."""
    sku_routes: dict[Ident, Ident] = Field(default_factory=dict)
    """Routing overrides: sku -> station_id, applied before categories."""
    failover_after_s: int = Field(default=30, ge=1, le=86400)
    job_ttl_s: int = Field(default=1800, ge=10, le=7 * 86400)
    prep_s_by_category: dict[Ident, PrepSeconds] = Field(
        default_factory=dict, max_length=MAX_PREP_ENTRIES
    )
    """Prep time (seconds) per item category, for firing scheduled orders; before the
    station's ``prep_s``, after ``prep_s_by_sku``."""
    prep_s_by_sku: dict[Ident, PrepSeconds] = Field(
        default_factory=dict, max_length=MAX_PREP_ENTRIES
    )
    """Prep time (seconds) per sku: the first rule a line's prep time is looked up by."""

    @model_validator(mode="after")
    def _check_refs(self) -> Self:
        printers = _unique("printer_id", [p.printer_id for p in self.printers])
        stations = _unique("station_id", [s.station_id for s in self.stations])
        for p in self.printers:
            if p.backup is not None and (p.backup not in printers or p.backup == p.printer_id):
                raise ValueError(
                    f"printer {p.printer_id!r}: backup {p.backup!r} is not another printer"
                )
        owner: dict[str, str] = {}
        for s in self.stations:
            if s.printer is not None and s.printer not in printers:
                raise ValueError(f"station {s.station_id!r}: unknown printer {s.printer!r}")
            for c in s.categories:
                if c in owner:
                    raise ValueError(
                        f"category {c!r} is listed by {owner[c]!r} and {s.station_id!r}"
                    )
                owner[c] = s.station_id
        if self.receipt_printer is not None and self.receipt_printer not in printers:
            raise ValueError(f"receipt_printer {self.receipt_printer!r} is not a printer")
        for target in [self.default_station, *self.sku_routes.values()]:
            if target is not None and target not in stations:
                raise ValueError(f"station {target!r} is not defined")
        return self

    def station(self, station_id: str) -> StationConfig | None:
        return next((s for s in self.stations if s.station_id == station_id), None)

    def printer(self, printer_id: str) -> PrinterConfig | None:
        return next((p for p in self.printers if p.printer_id == printer_id), None)


def _unique(what: str, ids: list[str]) -> set[str]:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"duplicate {what} {i!r}")
        seen.add(i)
    return seen


class VersionedStoreConfig(StoreConfig):
    """A store config as the broker holds and pushes it."""

    store_id: Ident
    version: Version
    releases: tuple[Ident, ...] = ()
    """The releases applied to this store's config, oldest first (docs/rollout.md)."""
