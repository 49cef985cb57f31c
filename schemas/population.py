"""JSON bodies of the population routes (the gateway's face to agency systems).

The personal ID is checked for shape here, so an obviously wrong request
never costs a national lookup. Rules: ``../shared/domain/population.md``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

PersonalId = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^(00[1-9]|0[1-8][0-9]|09[0-6])[0-9]{9}$",
        description="a 12-digit personal ID (số định danh cá nhân) starting with a province "
        "code 001-096",
        examples=["001203012345"],
    ),
]
BirthDate = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9]{4}(-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]))?$",
        description="a birth date YYYY-MM-DD, or only the year YYYY",
        examples=["2003-05-17"],
    ),
]
FullName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, examples=["Nguyễn Văn An"])]

# Digit 4 of the ID: (century, gender) per Circular 07/2016/TT-BCA.
_CENTURY_GENDER = {
    "0": (1900, "nam"), "1": (1900, "nu"), "2": (2000, "nam"), "3": (2000, "nu"),
    "4": (2100, "nam"), "5": (2100, "nu"), "6": (2200, "nam"), "7": (2200, "nu"),
    "8": (2300, "nam"), "9": (2300, "nu"),
}  # fmt: skip


def id_disagreement(personal_id: str, birth: str | None, gender: str | None) -> str | None:
    """Why the ID cannot belong to someone born ``birth`` of ``gender``; None if it can."""
    century, id_gender = _CENTURY_GENDER[personal_id[3]]
    if birth is not None:
        year = int(birth[:4])
        if year != century + int(personal_id[4:6]):
            return f"so_dinh_danh encodes birth year {century + int(personal_id[4:6])}, not {year}"
    if gender is not None and gender != id_gender:
        return f"so_dinh_danh encodes gender {id_gender!r}, not {gender!r}"
    return None


class CitizenLookupRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Look a citizen up by personal ID, optionally confirming name and birth date."""

    so_dinh_danh: PersonalId
    ho_va_ten: FullName | None = None
    ngay_sinh: BirthDate | None = None
    gioi_tinh: Literal["nam", "nu"] | None = None
    ly_do: Annotated[str, msgspec.Meta(max_length=250)] | None = None
    """Purpose of the lookup, kept in the audit trail."""

    def __post_init__(self) -> None:
        problem = id_disagreement(self.so_dinh_danh, self.ngay_sinh, self.gioi_tinh)
        if problem is not None:
            raise ValueError(problem)
