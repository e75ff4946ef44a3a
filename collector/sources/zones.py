"""The time zone of a site: where its local days begin and how its devices' local clock
times are read."""

from __future__ import annotations

import logging
from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tzlocal

from collector.normalise import warn_once

log = logging.getLogger(__name__)


def site_timezone(*names: str | None, vendor: str = "") -> tzinfo:
    """The first of ``names`` that names a zone (the config's, then what the device says),
    else this machine's local zone (UTC when it cannot be told). A name that is no zone is
    logged once (the config's names are checked when the config is read)."""
    for name in names:
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                warn_once(vendor, "time zone", name)
    try:
        return tzlocal.get_localzone()
    except (LookupError, OSError, ValueError) as err:  # e.g. no /etc/localtime
        log.warning("cannot determine the local time zone (%s); using UTC", err)
        return UTC
