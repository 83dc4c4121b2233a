"""JSON Schemas of the browser channels and REST bodies, for the web apps and integrators."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from protocol import rest
from protocol.config import StoreConfig
from protocol.messages import board, hq, kds, store
from protocol.orders import Amendment, CancelRequest, Order, ReprintRequest

#: file stem -> adapter. Channel unions plus every REST request and response body.
SCHEMAS: dict[str, TypeAdapter[Any]] = {
    "ws-kds": kds.KDS,
    "ws-hq": hq.HQ,
    "ws-board": board.BOARD,
    "ws-store": store.STORE,
    "order": TypeAdapter(Order),
    "amendment": TypeAdapter(Amendment),
    "cancel": TypeAdapter(CancelRequest),
    "reprint": TypeAdapter(ReprintRequest),
    "store-config": TypeAdapter(StoreConfig),
    "batch-request": TypeAdapter(rest.BatchRequest),
    "batch-response": TypeAdapter(rest.BatchResponse),
    "submit-result": TypeAdapter(rest.SubmitResult),
    "config-result": TypeAdapter(rest.ConfigResult),
    "token-revocation": TypeAdapter(rest.TokenRevocation),
    "revoke-result": TypeAdapter(rest.RevokeResult),
    "order-view": TypeAdapter(rest.OrderView),
    "job-view": TypeAdapter(rest.JobView),
    "store-view": TypeAdapter(rest.StoreView),
    "printer-view": TypeAdapter(rest.PrinterView),
    "problem": TypeAdapter(rest.Problem),
}


def write_schemas(out: Path) -> list[Path]:
    """Write one ``<name>.schema.json`` per entry of ``SCHEMAS``; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, adapter in SCHEMAS.items():
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://passline.dev/schemas/{name}.schema.json",
            **adapter.json_schema(mode="validation"),
        }
        path = out / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written
