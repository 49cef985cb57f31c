"""The textual formats inside edXML values: agency ids, document ids, dates, timestamps.

Kept as strings in the models. The parser and the builder put dates and
timestamps in the canonical form (``canonical_date``, ``canonical_timestamp``),
whichever form, among those in service, the sender wrote; these functions read
and write them. Digits are ASCII only: ``\\d`` would
also match other scripts' digits.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import NamedTuple

ORGAN_ID = re.compile(r"[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}")
"""Decision 20/2020/QĐ-TTg: ``000.00.11.H53``. The shape only, never a list."""

_DOCUMENT_ID = re.compile(
    r"(?P<organ_id>[^,]*),(?P<date>[0-9]{4}/[0-9]{2}/[0-9]{2}),(?P<number>[0-9]+)/(?P<notation>\S.*)"
)
_DATE_YMD = re.compile(r"([0-9]{4})/([0-9]{2})/([0-9]{2})")
_DATE_DMY = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4})")
_DATE_ISO = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_TIME = r" ([0-9]{2}):([0-9]{2}):([0-9]{2})"
_TIMESTAMP = re.compile(r"([0-9]{4})/([0-9]{2})/([0-9]{2})" + _TIME)
_TIMESTAMP_DMY = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4})" + _TIME)

VIETNAM = timezone(timedelta(hours=7), "ICT")
"""Vietnam's time zone (no daylight saving); edXML times are local and carry no zone."""


def is_organ_id(text: str) -> bool:
    return ORGAN_ID.fullmatch(text) is not None


class DocumentIdParts(NamedTuple):
    """``000.00.00.G22,2015/09/30,7816/VPCP-TTĐT`` taken apart."""

    organ_id: str
    date: date
    number: str
    notation: str

    def __str__(self) -> str:
        return format_document_id(self.organ_id, self.date, self.number, self.notation)


def parse_document_id(text: str) -> DocumentIdParts | None:
    """The parts of a DocumentId; None unless ``<OrganId>,<YYYY/MM/DD>,<Number>/<Notation>``."""
    match = _DOCUMENT_ID.fullmatch(text)
    if match is None or not is_organ_id(match["organ_id"]):
        return None
    day = _ymd(match["date"])
    if day is None:
        return None
    return DocumentIdParts(match["organ_id"], day, match["number"], match["notation"].rstrip())


def format_document_id(organ_id: str, day: date, number: str | int, notation: str) -> str:
    return f"{organ_id},{format_date(day)},{number}/{notation}"


def _ymd(text: str) -> date | None:
    match = _DATE_YMD.fullmatch(text)
    return _date(int(match[1]), int(match[2]), int(match[3])) if match else None


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def parse_date(text: str) -> date | None:
    """A date written ``YYYY/MM/DD``, ``DD/MM/YYYY`` or ``YYYY-MM-DD`` (all are in use)."""
    day = _ymd(text)
    if day is not None:
        return day
    if match := _DATE_DMY.fullmatch(text):
        return _date(int(match[3]), int(match[2]), int(match[1]))
    if match := _DATE_ISO.fullmatch(text):
        return _date(int(match[1]), int(match[2]), int(match[3]))
    return None


def canonical_date(text: str) -> str:
    """``text`` written ``YYYY/MM/DD`` if it is a date in a form we read; else unchanged."""
    day = parse_date(text)
    return format_date(day) if day is not None else text


def format_date(day: date) -> str:
    """``YYYY/MM/DD``: the form we write (the one DocumentId uses)."""
    return f"{day.year:04d}/{day.month:02d}/{day.day:02d}"


def parse_timestamp(text: str) -> datetime | None:
    """A ``YYYY/MM/DD HH:mm:ss`` or ``DD/MM/YYYY HH:mm:ss`` timestamp, in Vietnam's time."""
    if match := _TIMESTAMP.fullmatch(text):
        year, month, day, hour, minute, second = (int(g) for g in match.groups())
    elif match := _TIMESTAMP_DMY.fullmatch(text):
        day, month, year, hour, minute, second = (int(g) for g in match.groups())
    else:
        return None
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=VIETNAM)
    except ValueError:
        return None


def canonical_timestamp(text: str) -> str:
    """``text`` written ``YYYY/MM/DD HH:mm:ss`` if it is a timestamp we read; else unchanged."""
    moment = parse_timestamp(text)
    return format_timestamp(moment) if moment is not None else text


def format_timestamp(moment: datetime) -> str:
    """``YYYY/MM/DD HH:mm:ss`` in Vietnam's time (an aware datetime is converted)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(VIETNAM)
    return moment.strftime("%Y/%m/%d %H:%M:%S")
