"""Store time zones (DESIGN.md §8.7): IANA names only, a clear error naming the field,
old configs still valid, and no refusal where a machine has no zone database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from protocol import StoreConfig, TicketDoc
from protocol import timezones as tz
from protocol.messages.kds import Snapshot
from protocol.orders import Service, Template
from tests.protocol.test_models import DESIGN_CONFIG

STAMP = datetime(2026, 11, 29, 7, 46, tzinfo=UTC)


@pytest.mark.parametrize(
    "name", ["Asia/Shanghai", "UTC", "Etc/GMT+8", "America/Argentina/Buenos_Aires", "PRC"]
)
def test_iana_names_are_taken(name: str) -> None:
    assert StoreConfig.model_validate({**DESIGN_CONFIG, "timezone": name}).timezone == name


@pytest.mark.parametrize(
    "name",
    [
        "Asia/Shanghia",  # a typo
        "asia/shanghai",  # names are case-sensitive, as in the IANA list
        "+08:00",  # an offset is no zone: it misses daylight saving
        "CST",
        "",
        " Asia/Shanghai",
        "localtime",  # this machine's zone, whatever it is: no store's
        "posix/Asia/Shanghai",
        "../../etc/passwd",
        "/etc/localtime",
        "zone.tab",  # a file of the database that is no zone
        "A" * 65,
    ],
)
def test_anything_else_is_a_clear_error_naming_the_field(name: str) -> None:
    with pytest.raises(ValidationError) as err:
        StoreConfig.model_validate({**DESIGN_CONFIG, "timezone": name})
    (error,) = err.value.errors()
    assert error["loc"] == ("timezone",)
    if len(name) <= 64:
        assert "expected an IANA name such as 'Asia/Shanghai'" in error["msg"]


def test_a_config_without_a_zone_stays_valid() -> None:
    assert StoreConfig.model_validate(DESIGN_CONFIG).timezone is None


def test_local_time_is_the_stores_wall_clock() -> None:
    assert tz.local_time(STAMP, "Asia/Shanghai").strftime("%H:%M") == "15:46"
    assert tz.local_time(STAMP, "America/New_York").strftime("%H:%M") == "02:46"
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert tz.local_time(summer, "America/New_York").strftime("%H:%M") == "08:00"  # EDT
    cst = STAMP.astimezone(timezone(timedelta(hours=8)))
    assert tz.local_time(cst, None) is cst  # no zone: as stamped
    assert tz.local_time(cst, "Mars/Olympus_Mons") is cst  # a zone this machine lacks


def test_without_a_zone_database_names_of_the_right_shape_are_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Windows cashier PC without ``tzdata`` cannot tell a zone from a typo; it must not
    refuse a config or a job over it (the broker checked the name already)."""
    monkeypatch.setattr(tz, "zone_database", lambda: False)
    doc = TicketDoc(
        template=Template.KITCHEN,
        order_ref="42",
        channel="pos",
        service=Service.DINE_IN,
        placed_at=STAMP,
        timezone="Mars/Olympus_Mons",
        lines=({"qty": 1, "name": "Tea"},),  # type: ignore[arg-type]
    )
    assert doc.timezone == "Mars/Olympus_Mons"
    assert tz.local_time(STAMP, doc.timezone) is STAMP  # printed as stamped
    with pytest.raises(ValidationError):
        TicketDoc.model_validate({**doc.model_dump(), "timezone": "../etc/passwd"})


def test_screens_are_told_the_zone() -> None:
    station = StoreConfig.model_validate(DESIGN_CONFIG).stations[0]
    snap = Snapshot(epoch="e", offset=0, station=station, timezone="Asia/Shanghai")
    assert '"timezone":"Asia/Shanghai"' in snap.model_dump_json()
    assert Snapshot(epoch="e", offset=0, station=station).timezone is None
