"""Store time: IANA zone names and the wall clock in them (DESIGN.md §8.7).

A store's chits, screens and reports show its own wall-clock time, whatever offset a sales
channel stamped an order with: ``2026-11-29T07:46:00Z`` is "15:46" in ``Asia/Shanghai``.

The zone database is the system's (``/usr/share/zoneinfo`` on Linux and macOS) or the
``tzdata`` package. A machine with neither (a Windows PC without ``tzdata``) cannot check
or use a zone: names of the right shape are taken there and times keep the offset they
carry, so a store client never refuses a job or a config over it (docs/protocol.md).
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, tzinfo
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, StringConstraints

#: The broker's ``default_timezone`` unless set: what a store config without a
#: ``timezone`` means.
DEFAULT_TIMEZONE = "UTC"

_SHAPE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$")
#: Files of the zone database that are no zone of the IANA list: the machine's own zone
#: (which would differ from box to box) and the database's variants.
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})
_NOT_ZONE_DIRS = ("posix/", "right/")


@functools.cache
def zone_database() -> bool:
    """Whether this machine has a zone database at all."""
    try:
        ZoneInfo(DEFAULT_TIMEZONE)
    except ZoneInfoNotFoundError:
        return False
    return True


def check_zone(name: str) -> str:
    """``name`` if it is an IANA zone name this machine knows (any name of that shape
    where the machine has no zone database), else ``ValueError`` saying what is expected."""
    if _SHAPE.match(name) and name not in _NOT_ZONES and not name.startswith(_NOT_ZONE_DIRS):
        if not zone_database() or _loads(name):
            return name
    raise ValueError(
        f"unknown time zone {name!r}: expected an IANA name such as 'Asia/Shanghai' or 'UTC'"
    )


def _loads(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # ValueError: a file that is no zone
        return False
    return True


#: An IANA time zone name (``Asia/Shanghai``), checked against the zone database.
ZoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(check_zone)]


def zone(name: str | None) -> tzinfo | None:
    """The zone called ``name``; None for no name, or one this machine cannot load."""
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local_time(moment: datetime, name: str | None) -> datetime:
    """``moment`` on the wall clock of zone ``name``; as it is (its own offset) without a
    zone or where the zone cannot be loaded."""
    tz = zone(name)
    return moment.astimezone(tz) if tz is not None else moment
