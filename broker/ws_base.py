"""What the websocket server and its four endpoints share (``ws.py``, ``ws_store.py``,
``ws_kds.py``, ``ws_hq.py``, ``ws_board.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from websockets.typing import Subprotocol

from broker.clock import Now, system_now
from broker.config import Settings
from broker.fleet import FleetState
from broker.hub import Hub
from broker.kds_actions import Kitchen
from broker.metrics import Metrics
from broker.orders import Orders
from broker.scheduler import Scheduler
from broker.sos import SpeedOfService
from broker.storage import Backend
from broker.webhooks import Webhooks
from protocol.close_codes import CloseCode

STORE_PATH, KDS_PATH, HQ_PATH = "/v1/ws/store", "/v1/ws/kds", "/v1/ws/hq"
BOARD_PATH = "/v1/ws/board"
MSGPACK, JSON = Subprotocol("passline.v1.msgpack"), Subprotocol("passline.v1.json")
SUBPROTOCOLS = {STORE_PATH: MSGPACK, KDS_PATH: JSON, HQ_PATH: JSON, BOARD_PATH: JSON}
REPLAY_BATCH = 500
T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    storage: Backend
    hub: Hub
    orders: Orders
    fleet: FleetState
    kitchen: Kitchen
    metrics: Metrics
    webhooks: Webhooks
    scheduler: Scheduler
    """Fires scheduled orders (``broker/scheduler.py``); its task is the broker's."""
    now: Now = system_now
    """The wall clock (``broker/clock.py``): every timestamp the broker writes."""
    sos: SpeedOfService | None = None
    """Speed of service: measured in KDS actions, read by the report (``broker/sos.py``)."""


class Refused(Exception):
    """A peer refused with a close code and a reason (the server closes it so)."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
