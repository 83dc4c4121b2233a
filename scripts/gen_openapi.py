#!/usr/bin/env python3
"""Write docs/openapi.json: the broker's OpenAPI document, as served at ``/openapi.json``.

The FastAPI app is built by ``broker.rest.build_app`` around in-memory services; nothing
listens and nothing is stored.

    python scripts/gen_openapi.py           # rewrite the file
    python scripts/gen_openapi.py --check   # exit 1 if the file is out of date
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generated import write_or_check  # noqa: E402

from broker.auth import TokenCache  # noqa: E402
from broker.fleet import FleetState  # noqa: E402
from broker.limits import RateLimiter  # noqa: E402
from broker.metrics import Metrics  # noqa: E402
from broker.orders import Orders  # noqa: E402
from broker.rest import Api, build_app  # noqa: E402
from broker.revocation import Revocations  # noqa: E402
from broker.storage.memory import MemoryStorage  # noqa: E402

OUT = ROOT / "docs" / "openapi.json"
#: Only signs tokens nobody asks for: the document does not depend on it.
UNUSED_SECRET = "openapi-generator-" + "x" * 32


def render() -> str:
    storage = MemoryStorage()
    api = Api(
        storage,
        Orders(storage),
        FleetState(storage, lambda message: None),
        Metrics(),
        TokenCache(UNUSED_SECRET),
        RateLimiter(0.0, 1),
        Revocations(storage.denylist),
    )
    doc = build_app(api).openapi()
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def main() -> int:
    return write_or_check(__doc__ or "", OUT, render, "scripts/gen_openapi.py")


if __name__ == "__main__":
    raise SystemExit(main())
