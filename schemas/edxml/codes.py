"""The edXML code tables (edxml.md), with what each code means in Vietnamese and English.

Only tables that the sources agree on are closed (values outside are
``bad_code``). SteeringType and DocumentType.Type are not here: sources
disagree, so any small integer is accepted (``SMALL_INT_MAX``).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

SMALL_INT_MAX = 999
"""The largest SteeringType/Type/TypeDetail accepted ("any small integer")."""


class StatusCode(StrEnum):
    """Status message codes: where a receiver is with a document."""

    ARRIVED = "01"
    REFUSED = "02"
    RECEIVED = "03"
    ASSIGNED = "04"
    IN_PROGRESS = "05"
    COMPLETED = "06"
    TAKE_BACK_REQUESTED = "13"
    TAKE_BACK_ACCEPTED = "15"
    TAKE_BACK_REFUSED = "16"

    @property
    def meaning_vi(self) -> str:
        return _STATUS_MEANINGS[self][0]

    @property
    def meaning_en(self) -> str:
        return _STATUS_MEANINGS[self][1]


_STATUS_MEANINGS = {
    StatusCode.ARRIVED: ("Đã đến", "arrived"),
    StatusCode.REFUSED: (
        "Từ chối tiếp nhận / từ chối thu hồi",
        "refused to receive / refused recall",
    ),
    StatusCode.RECEIVED: ("Đã tiếp nhận / đồng ý thu hồi", "received / recall accepted"),
    StatusCode.ASSIGNED: ("Phân công", "assigned"),
    StatusCode.IN_PROGRESS: ("Đang xử lý", "in progress"),
    StatusCode.COMPLETED: ("Hoàn thành", "completed"),
    StatusCode.TAKE_BACK_REQUESTED: ("Yêu cầu lấy lại / thu hồi", "request to take back / recall"),
    StatusCode.TAKE_BACK_ACCEPTED: ("Đồng ý lấy lại / cập nhật", "take-back / update accepted"),
    StatusCode.TAKE_BACK_REFUSED: ("Từ chối lấy lại / cập nhật", "take-back / update refused"),
}


class Priority(IntEnum):
    """OtherInfo/Priority (độ khẩn)."""

    NORMAL = 0
    URGENT = 1  # khẩn
    VERY_URGENT = 2  # thượng khẩn
    EXPRESS = 3  # hỏa tốc
    EXPRESS_AT_SET_TIME = 4  # hỏa tốc hẹn giờ


class BussinessDocType(IntEnum):
    """Bussiness/BussinessDocType: what the message does to a document."""

    NEW = 0
    RECALL = 1
    UPDATE = 2
    REPLACE = 3


class ReceiverType(IntEnum):
    """Receiver/ReceiverType in an update's receiver list."""

    REMOVED = 0
    ADDED = 1
