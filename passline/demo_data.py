"""What the demo store sells and how its lunch rush arrives. Data only."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from typing import Any

STORE_ID = "demo"

STATIONS = [
    {"station_id": "grill", "name": "Grill", "categories": ["burgers", "mains"], "printer": "kitchen",
     "warn_after_s": 240, "late_after_s": 420},
    {"station_id": "fry", "name": "Fry", "categories": ["fries", "snacks"], "printer": "kitchen",
     "warn_after_s": 180, "late_after_s": 300},
    {"station_id": "cold", "name": "Cold", "categories": ["salads", "desserts"],
     "warn_after_s": 180, "late_after_s": 360},
    {"station_id": "bar", "name": "Bar", "categories": ["drinks"], "printer": "bar",
     "templates": ["label"], "warn_after_s": 120, "late_after_s": 240},
    {"station_id": "expo", "name": "Expo", "expo": True},
]  # fmt: skip

# (sku, name, category, modifiers that may be chosen, allergens)
MENU: list[tuple[str, str, str, list[str], list[str]]] = [
    ("B01", "Double cheeseburger", "burgers", ["no onion", "extra pickles", "no sauce"], ["gluten", "dairy"]),
    ("B02", "Chicken burger", "burgers", ["spicy", "no mayo"], ["gluten", "egg"]),
    ("M01", "宫保鸡丁", "mains", ["少辣", "不要花生"], ["peanut"]),
    ("M02", "麻婆豆腐", "mains", ["微辣", "加饭"], ["soy"]),
    ("M03", "Beef noodle soup", "mains", ["extra noodles", "no coriander"], ["gluten"]),
    ("F01", "Fries", "fries", ["no salt", "large"], []),
    ("F02", "Onion rings", "fries", [], ["gluten"]),
    ("S01", "春卷", "snacks", [], ["gluten"]),
    ("C01", "Caesar salad", "salads", ["no croutons", "dressing on side"], ["dairy", "egg"]),
    ("C02", "Mango pudding", "desserts", [], ["dairy"]),
    ("D01", "Iced lemon tea", "drinks", ["less ice", "no sugar"], []),
    ("D02", "珍珠奶茶", "drinks", ["少冰", "半糖"], ["dairy"]),
    ("D03", "Cola", "drinks", ["no ice"], []),
]  # fmt: skip

CHANNELS = ["pos", "pos", "pos", "kiosk", "miniprogram", "meituan", "eleme", "ubereats"]
SERVICE = {"pos": "dine_in", "kiosk": "takeout", "miniprogram": "pickup"}
NAMES = ["Li", "Wang", "Zhang", "Chen", "Sam", "Alex", "Maria", "Kenji"]


def store_config(ports: dict[str, int]) -> dict[str, Any]:
    def tcp(name: str) -> str:
        return f"tcp://127.0.0.1:{ports[name]}"

    return {
        "name": "Demo Noodle House",
        "printers": [
            {
                "printer_id": "kitchen",
                "name": "Hot line",
                "transport": tcp("kitchen"),
                "width_mm": 80,
                "backup": "receipt",
            },
            {"printer_id": "bar", "name": "Bar", "transport": tcp("bar"), "width_mm": 58},
            {"printer_id": "receipt", "name": "Front", "transport": tcp("receipt"), "width_mm": 80},
        ],
        "stations": STATIONS,
        "receipt_printer": "receipt",
        "default_station": "grill",
        "failover_after_s": 45,
        "job_ttl_s": 1800,
    }


def orders_per_minute(t_s: float) -> float:
    """A lunch rush squeezed into ten minutes: a ramp, a peak, a tail, and again."""
    phase = (t_s % 600) / 600
    return 6 + 30 * math.sin(math.pi * phase) ** 2


def make_order(rng: random.Random, n: int) -> dict[str, Any]:
    channel = rng.choice(CHANNELS)
    items = []
    for line in range(rng.choice([1, 2, 2, 3, 3, 4, 5])):
        sku, name, category, mods, allergens = rng.choice(MENU)
        items.append({
            "line_id": str(line + 1), "sku": sku, "name": name, "category": category,
            "qty": rng.choice([1, 1, 1, 2, 3]),
            "modifiers": rng.sample(mods, k=rng.randint(0, min(2, len(mods)))),
            "allergens": allergens,
        })  # fmt: skip
        if rng.random() < 0.08:
            items[-1]["note"] = rng.choice(["well done", "allergy: nuts!", "少盐", "for the kid"])
    order: dict[str, Any] = {
        "store_id": STORE_ID,
        "channel": channel,
        "external_id": f"{channel.upper()}-{n:05d}",
        "service": SERVICE.get(channel, "delivery"),
        "placed_at": datetime.now(UTC).isoformat(),
        "priority": "rush" if rng.random() < 0.1 else "normal",
        "pickup_code": str(100 + n % 900),
        "items": items,
    }
    if order["service"] == "dine_in":
        order["table"] = str(rng.randint(1, 24))
        order["guests"] = rng.randint(1, 6)
    else:
        order["customer"] = rng.choice(NAMES)
    if rng.random() < 0.1:
        order["note"] = rng.choice(["no cutlery", "ring the bell", "不要餐具"])
    return order


def make_amendment(rng: random.Random, order: dict[str, Any]) -> dict[str, Any]:
    sku, name, category, _, allergens = rng.choice(MENU)
    amend: dict[str, Any] = {
        "add": [{"line_id": f"a{rng.randint(100, 999)}", "sku": sku, "name": name,
                 "category": category, "qty": 1, "allergens": allergens}],
    }  # fmt: skip
    first = order["items"][0]
    if len(order["items"]) > 1 and rng.random() < 0.5:
        amend["void"] = [order["items"][-1]["line_id"]]
    else:
        amend["change"] = [{"line_id": first["line_id"], "qty": first["qty"] + 1}]
    return amend
