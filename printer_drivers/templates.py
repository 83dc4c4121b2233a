"""``render(doc, profile) -> bytes`` and the five chit templates of DESIGN.md §3:
kitchen, receipt, label, delta, void. Pure.

Each template takes a ``TicketDoc`` and a fresh ``Chit`` and lays the document out;
``render`` picks the template and returns the bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from printer_drivers.layout import Chit, Style
from printer_drivers.profile import RenderProfile
from protocol.config import ChitStyle
from protocol.jobs import DocLine, TicketDoc
from protocol.orders import Priority, Service, Template
from protocol.tickets import LineChangeKind
from protocol.timezones import local_time

CHANNEL_LABELS = {
    "pos": "POS",
    "miniprogram": "MINI PROGRAM",
    "kiosk": "KIOSK",
    "web": "WEB",
    "meituan": "MEITUAN",
    "eleme": "ELE.ME",
    "ubereats": "UBER EATS",
    "doordash": "DOORDASH",
}
SERVICE_LABELS = {
    Service.DINE_IN: "DINE IN",
    Service.TAKEOUT: "TAKEOUT",
    Service.DELIVERY: "DELIVERY",
    Service.PICKUP: "PICKUP",
}
CHANGE_LABELS = {
    LineChangeKind.ADDED: "+ ADD",
    LineChangeKind.CHANGED: "~ CHANGE",
    LineChangeKind.VOIDED: "VOID",
}
MODIFIER_INDENT = 4
NOTE_INDENT = 4

BOLD = Style(bold=True)
TALL = Style(height=2, bold=True)
BIG = Style(width=2, height=2, bold=True)
CENTER = Style(align="center")
CENTER_BOLD = Style(align="center", bold=True)
CENTER_TALL = Style(height=2, bold=True, align="center")
CENTER_BIG = Style(width=2, height=2, bold=True, align="center")
CENTER_HUGE = Style(width=3, height=3, bold=True, align="center")


def channel_label(channel: str) -> str:
    return CHANNEL_LABELS.get(channel, channel.removeprefix("x-").upper())


def hhmm(moment: datetime, zone: str | None = None) -> str:
    """``HH:MM`` on the store's wall clock (``zone``, DESIGN.md §8.7); without a zone, in
    the offset the time carries."""
    return local_time(moment, zone).strftime("%H:%M")


def _order_number_style(chit: Chit) -> Style:
    return CENTER_HUGE if chit.profile.width_mm == 80 else CENTER_BIG


def notices(chit: Chit, doc: TicketDoc) -> None:
    """REROUTED / REPRINT banners: what the kitchen must notice before anything else."""
    if doc.rerouted_from:
        chit.banner(f"REROUTED from {doc.rerouted_from}", CENTER_BOLD)
    if doc.reprint:
        chit.banner("REPRINT", CENTER_TALL)


def heading(chit: Chit, doc: TicketDoc, title: str | None = None) -> None:
    """The store's header line, station, big order number, channel and service, RUSH,
    who and when."""
    if chit.look.header:
        chit.text(chit.look.header, CENTER_BOLD)
    notices(chit, doc)
    if title:
        chit.banner(title, CENTER_BIG)
    if doc.station:
        chit.text(doc.station, CENTER_TALL)
    chit.text(f"#{doc.order_ref}", _order_number_style(chit))
    chit.text(f"{channel_label(doc.channel)} / {SERVICE_LABELS[doc.service]}", CENTER_TALL)
    if doc.priority is Priority.RUSH:
        chit.banner("RUSH", CENTER_BIG)
    who(chit, doc)
    when(chit, doc)
    chit.rule()


def who(chit: Chit, doc: TicketDoc) -> None:
    if doc.table:
        chit.text(f"Table {doc.table}", TALL)
    if doc.customer:
        chit.text(f"Customer {doc.customer}", BOLD)
    if doc.guests:
        chit.text(f"Guests {doc.guests}")


def when(chit: Chit, doc: TicketDoc) -> None:
    line = f"Placed {hhmm(doc.placed_at, doc.timezone)}"
    if doc.revision > 1:
        line += f", revision {doc.revision}"
    chit.text(line)
    if doc.due_at:
        chit.text(f"DUE {hhmm(doc.due_at, doc.timezone)}", TALL)


def item(chit: Chit, line: DocLine, prefix: str = "") -> None:
    """``2 x Name`` in tall type, then indented modifiers, note and allergens."""
    head = f"{prefix} " if prefix else ""
    head += f"{line.qty} x "
    chit.text(head + line.name, BIG if chit.look.big_items else TALL, hang=min(len(head), 8))
    for modifier in line.modifiers:
        chit.text(f"- {modifier}", indent=MODIFIER_INDENT, hang=MODIFIER_INDENT + 2)
    if line.note:
        chit.text(f"* {line.note}", BOLD, indent=NOTE_INDENT, hang=NOTE_INDENT + 2)
    if line.allergens:
        chit.banner(f"ALLERGENS: {', '.join(line.allergens)}", BOLD)


def items(chit: Chit, doc: TicketDoc, prefix: Callable[[DocLine], str] | None = None) -> None:
    """Lines in course order, with a separator where a course starts."""
    courses = sorted({line.course for line in doc.lines})
    for course in courses:
        if len(courses) > 1:
            chit.titled_rule(f"Course {course}")
        for line in doc.lines:
            if line.course == course:
                item(chit, line, prefix(line) if prefix else "")


def order_note(chit: Chit, doc: TicketDoc) -> None:
    if doc.note:
        chit.rule()
        chit.text(f"NOTE: {doc.note}", TALL)


def kitchen(chit: Chit, doc: TicketDoc) -> None:
    chit.buzz()
    heading(chit, doc)
    items(chit, doc)
    order_note(chit, doc)
    chit.cut()


def receipt(chit: Chit, doc: TicketDoc) -> None:
    notices(chit, doc)
    if doc.store_name:
        chit.text(doc.store_name, CENTER_TALL)
    chit.text(f"{channel_label(doc.channel)} / {SERVICE_LABELS[doc.service]}", CENTER)
    chit.text(f"Order #{doc.order_ref}", CENTER_BIG)
    who(chit, doc)
    when(chit, doc)
    chit.rule()
    for line in doc.lines:
        item(chit, line)
    order_note(chit, doc)
    if doc.pickup_code:
        chit.rule()
        chit.text("Pickup code", CENTER_BOLD)
        chit.text(doc.pickup_code, _order_number_style(chit))
        chit.qr(doc.pickup_code)
    chit.text("Thank you!", CENTER)
    chit.cut()


def label(chit: Chit, doc: TicketDoc) -> None:
    """One sticker per unit: a line of qty 3 gives three stickers, ``1/3`` … ``3/3``."""
    units = [(line, n) for line in doc.lines for n in range(1, line.qty + 1)]
    for index, (line, _) in enumerate(units, start=1):
        notices(chit, doc)
        chit.text(f"#{doc.order_ref} {index}/{len(units)}", BIG)
        chit.text(line.name, TALL)
        for modifier in line.modifiers:
            chit.text(f"- {modifier}", indent=2, hang=4)
        if line.note:
            chit.text(f"* {line.note}", BOLD, indent=2, hang=4)
        if line.allergens:
            chit.banner(f"ALLERGENS: {', '.join(line.allergens)}", BOLD)
        placed = hhmm(doc.placed_at, doc.timezone)
        tail = f"{channel_label(doc.channel)} {SERVICE_LABELS[doc.service]} {placed}"
        chit.text(tail + (f" {doc.customer}" if doc.customer else ""))
        chit.cut()


def _change_prefix(line: DocLine) -> str:
    return CHANGE_LABELS[line.change] if line.change else ""


def delta(chit: Chit, doc: TicketDoc) -> None:
    """An amendment: only the lines it touched, each marked + ADD / ~ CHANGE / VOID."""
    chit.buzz()
    heading(chit, doc, title=f"CHANGED rev {doc.revision}")
    items(chit, doc, prefix=_change_prefix)
    order_note(chit, doc)
    chit.cut()


def void(chit: Chit, doc: TicketDoc) -> None:
    """A cancelled order: every line struck with VOID."""
    chit.buzz()
    heading(chit, doc, title="VOID")
    chit.text("ORDER CANCELLED", CENTER_TALL)
    items(chit, doc, prefix=lambda _: CHANGE_LABELS[LineChangeKind.VOIDED])
    order_note(chit, doc)
    chit.banner("DO NOT MAKE", CENTER_BIG)
    chit.cut()


TEMPLATES: dict[Template, Callable[[Chit, TicketDoc], None]] = {
    Template.KITCHEN: kitchen,
    Template.RECEIPT: receipt,
    Template.LABEL: label,
    Template.DELTA: delta,
    Template.VOID: void,
}


def render(doc: TicketDoc, profile: RenderProfile, look: ChitStyle | None = None) -> bytes:
    """The chit for ``doc.template``, from ESC @ to the cut; one copy (callers repeat it).
    ``look`` is the store's chit layout (header line, item size); none: the standard one.

    Same input, same bytes: nothing here reads the clock or the network.
    """
    chit = Chit(profile, look)
    TEMPLATES[doc.template](chit, doc)
    return chit.bytes()
