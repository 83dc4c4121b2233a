"""``passline demo`` puts its store where the machine is (issue 17: a new user's chits
printed UTC times in a kitchen eight hours ahead)."""

from __future__ import annotations

import pytest

from passline.runtime import host_timezone
from protocol.timezones import check_zone


def test_tz_names_the_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    assert host_timezone() == "Asia/Shanghai"
    monkeypatch.setenv("TZ", ":Europe/Paris")
    assert host_timezone() == "Europe/Paris"


def test_a_tz_that_is_no_zone_name_falls_back_to_the_system_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "CST-8")  # a POSIX rule, not an IANA name
    found = host_timezone()
    assert found is None or check_zone(found) == found
