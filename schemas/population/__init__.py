"""JSON bodies of the population routes (the gateway's face to agency systems).

Requests are checked here, so an obviously wrong one never costs a national
lookup: text only of characters XML can carry (it becomes SOAP), the
personal ID's shape and province code (as the field's type), and
its century/gender digit against the declared birth year and gender (in
``__post_init__``). Answers are in ``schemas.population.answers``; the SOAP
side is ``population.wsdl`` next to this file.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from schemas.population.answers import Relation
from schemas.population.ids import ID_PATTERN, PROVINCES, Gender, disagreements
from schemas.typecheck import FieldError, FieldsInvalid
from schemas.xmlsafe import XML_TEXT_PATTERN

__all__ = [
    "PROVINCES",
    "CitizenLookupRequest",
    "CitizenRelativesRequest",
    "CitizenVerifyRequest",
    "DeclaredRelative",
    "FieldsInvalid",
    "Gender",
    "Relation",
]

PersonalId = Annotated[
    str,
    msgspec.Meta(
        pattern=ID_PATTERN,
        description="a 12-digit personal ID (số định danh cá nhân) starting with the code of "
        "a province (001 Hà Nội ... 096 Cà Mau; codes no province has are refused)",
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
FullName = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=100, pattern=XML_TEXT_PATTERN, examples=["Nguyễn Văn An"]
    ),
]
ServiceCode = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=50,
        pattern=XML_TEXT_PATTERN,
        description="code of the public service (MaDVC) the lookup is for; "
        "default: the upstream's `ma_dvc` setting",
        examples=["1.001612"],
    ),
]
Purpose = Annotated[str, msgspec.Meta(max_length=250, pattern=XML_TEXT_PATTERN)]


class _CitizenQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    so_dinh_danh: PersonalId
    ho_va_ten: FullName | None = None
    ngay_sinh: BirthDate | None = None
    gioi_tinh: Gender | None = None
    """Not sent upstream (the request has no such field): only checked against the ID."""
    ma_dvc: ServiceCode | None = None
    ly_do: Purpose | None = None
    """Purpose of the call, kept in the audit trail."""

    def __post_init__(self) -> None:
        found = disagreements(self.so_dinh_danh, self.ngay_sinh, self.gioi_tinh)
        if found:
            raise FieldsInvalid([FieldError((field,), message) for field, message in found])


class CitizenLookupRequest(_CitizenQuery, kw_only=True, forbid_unknown_fields=True):
    """Look a citizen up by personal ID, optionally confirming name and birth date."""


class CitizenVerifyRequest(_CitizenQuery, kw_only=True, forbid_unknown_fields=True):
    """Check that what a citizen declared (name, and birth date if given) matches."""

    ho_va_ten: FullName


class DeclaredRelative(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One relative as the citizen declared them: a personal ID, a name, or both."""

    quan_he: Relation
    so_dinh_danh: PersonalId | None = None
    ho_va_ten: FullName | None = None

    def __post_init__(self) -> None:
        if self.so_dinh_danh is None and self.ho_va_ten is None:
            raise FieldsInvalid(
                [FieldError(("ho_va_ten",), "give ho_va_ten or so_dinh_danh (or both)")]
            )


class CitizenRelativesRequest(_CitizenQuery, kw_only=True, forbid_unknown_fields=True):
    """Check a citizen's declared relatives against the national record."""

    nguoi_than: Annotated[list[DeclaredRelative], msgspec.Meta(min_length=1, max_length=4)]

    def __post_init__(self) -> None:
        found = [
            FieldError((field,), message)
            for field, message in disagreements(self.so_dinh_danh, self.ngay_sinh, self.gioi_tinh)
        ]
        seen: set[str] = set()
        for index, relative in enumerate(self.nguoi_than):
            if relative.quan_he in seen:
                found.append(
                    FieldError(
                        ("nguoi_than", index, "quan_he"), f"{relative.quan_he!r} given twice"
                    )
                )
            seen.add(relative.quan_he)
        if found:
            raise FieldsInvalid(found)
