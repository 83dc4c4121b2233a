"""Ticket documents the printer-driver tests print: Latin, Chinese, and a 20-line order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from protocol.jobs import DocLine, TicketDoc
from protocol.orders import Template
from protocol.tickets import LineChangeKind

CST = timezone(timedelta(hours=8))
PLACED = datetime(2026, 11, 21, 12, 3, tzinfo=CST)


def latin(template: Template) -> TicketDoc:
    return TicketDoc(
        template=template,
        store_name="Demo Noodle House",
        station="Grill",
        order_ref="42",
        pickup_code="42",
        channel="meituan",
        service="delivery",
        customer="Léa",
        priority="rush",
        placed_at=PLACED,
        note="no cutlery",
        lines=(
            DocLine(
                qty=2,
                name="Double cheeseburger",
                modifiers=("no onion", "extra pickles"),
                allergens=("gluten", "dairy"),
                change=LineChangeKind.ADDED if template is Template.DELTA else None,
            ),
            DocLine(
                qty=1,
                name="Crème brûlée",
                note="serve after mains",
                course=2,
                change=LineChangeKind.VOIDED if template is Template.DELTA else None,
            ),
        ),
    )


def chinese(template: Template) -> TicketDoc:
    return TicketDoc(
        template=template,
        store_name="老王面馆",
        station="热菜",
        order_ref="A017",
        pickup_code="A017",
        channel="eleme",
        service="dine_in",
        table="12",
        guests=4,
        placed_at=PLACED,
        note="少放盐，多加香菜，谢谢老板！",
        lines=(
            DocLine(
                qty=1,
                name="宫保鸡丁",
                modifiers=("少辣",),
                note="不要花生",
                allergens=("花生",),
                change=LineChangeKind.CHANGED if template is Template.DELTA else None,
            ),
            DocLine(
                qty=2,
                name="牛肉拉面 Beef noodles",
                modifiers=("加蛋", "宽面"),
                change=LineChangeKind.ADDED if template is Template.DELTA else None,
            ),
        ),
    )


def big_order() -> TicketDoc:
    """20 lines over three courses, with modifiers, notes and allergens."""
    lines = []
    for i in range(1, 21):
        lines.append(
            DocLine(
                qty=1 + i % 3,
                name=f"Dish {i:02d} "
                + ("Szechuan pepper beef with crispy shallots" if i % 4 == 0 else "fried rice"),
                modifiers=(f"mod {i}a", "extra sauce on the side please") if i % 2 else (),
                note="well done" if i % 5 == 0 else None,
                allergens=("peanut", "sesame") if i % 7 == 0 else (),
                course=1 + i % 3,
            )
        )
    return TicketDoc(
        template=Template.KITCHEN,
        station="Wok",
        order_ref="1234",
        channel="pos",
        service="dine_in",
        table="T5",
        guests=8,
        placed_at=PLACED,
        due_at=PLACED + timedelta(minutes=30),
        note="birthday table: bring the noodles last",
        revision=2,
        lines=tuple(lines),
    )
