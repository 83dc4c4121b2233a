"""``GET /kds/config.json`` and friends (DESIGN.md §8.4): the pages learn their websocket
base from the broker that served them, never from a link."""

from __future__ import annotations

import httpx
import pytest

from broker.app import start_broker
from broker.errors import ConfigError
from broker.pages import check_public_ws
from kds_web.pages import page_ws
from tests.broker.conftest import test_settings as settings_for

PATHS = ["/kds/config.json", "/hq/config.json", "/board/config.json"]


@pytest.mark.parametrize("path", PATHS)
async def test_each_page_is_told_the_ws_port_on_its_own_host(path: str) -> None:
    async with start_broker(settings_for("memory://")) as b:
        base = f"http://127.0.0.1:{b.http_port}"
        async with httpx.AsyncClient(base_url=base) as http:
            r = await http.get(path)
            assert r.status_code == 200, r.text
            assert r.json() == {"ws": f"ws://127.0.0.1:{b.ws_port}"}
            assert r.headers["cache-control"] == "no-store"
            # the page's host as the browser named it, with the broker's ws port
            named = await http.get(path, headers={"Host": f"kitchen-pc.local:{b.http_port}"})
            assert named.json() == {"ws": f"ws://kitchen-pc.local:{b.ws_port}"}
            # the rest of the app is unchanged
            assert (await http.get("/kds/")).status_code == 200
            assert (await http.get("/healthz")).status_code == 200


async def test_public_ws_wins_over_the_request_host() -> None:
    settings = settings_for("memory://", public_ws="wss://passline.example.com/")
    async with start_broker(settings) as b:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{b.http_port}") as http:
            r = await http.get("/kds/config.json", headers={"Host": "elsewhere.example:80"})
    assert r.json() == {"ws": "wss://passline.example.com"}


async def test_a_bad_public_ws_stops_the_broker_with_one_line() -> None:
    settings = settings_for("memory://", public_ws="http://passline.example.com")
    with pytest.raises(BaseException) as caught:
        async with start_broker(settings):
            pass
    found = caught.value
    while isinstance(found, BaseExceptionGroup):
        found = found.exceptions[0]
    assert isinstance(found, ConfigError) and "public_ws" in found.detail


def test_page_ws_keeps_only_a_well_formed_host() -> None:
    assert page_ws("10.0.0.5:8080", 8765, secure=False) == "ws://10.0.0.5:8765"
    assert page_ws("[::1]:8080", 8765, secure=True) == "wss://[::1]:8765"
    assert page_ws("kds.local", 9000, secure=False) == "ws://kds.local:9000"
    for odd in (None, "", "a b", "evil.com/x", "user@host", "h:8080:1"):
        assert page_ws(odd, 8765, secure=False) == "ws://127.0.0.1:8765"


def test_check_public_ws() -> None:
    assert check_public_ws("ws://10.0.0.5:8765") == "ws://10.0.0.5:8765"
    assert check_public_ws("wss://kds.example.com/passline/") == "wss://kds.example.com/passline"
    for bad in ("http://x", "x:8765", "ws://", "ws://x:99999", "ws://u@x", "ws://x/?a=1"):
        with pytest.raises(ConfigError):
            check_public_ws(bad)
