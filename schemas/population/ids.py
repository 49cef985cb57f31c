"""The 12-digit personal ID (số định danh cá nhân): what it encodes and how to check it.

Decree 137/2015 and Circular 07/2016/TT-BCA: digits 1-3 are the code of the
province where the birth was registered, digit 4 the century and gender,
digits 5-6 the birth year's last two digits, the rest random (no check digit).
The rules of Decree 137/2015 and Circular 07/2016/TT-BCA.
"""

from __future__ import annotations

from typing import Literal

Gender = Literal["nam", "nu"]

# Province codes as the ID uses them: the two-digit administrative code of
# Decision 124/2004/QĐ-TTg with a leading 0, for the 63 provinces that
# registered births until 2025. population.md gives only the range 001-096;
# this list is ours (the gaps are codes no province has). Citizens whose birth
# was registered abroad get a country code instead: not accepted here (guess:
# no sample shows one). The province mergers of 2025 do not change issued IDs.
PROVINCES: dict[str, str] = {
    "001": "Thành phố Hà Nội", "002": "Tỉnh Hà Giang", "004": "Tỉnh Cao Bằng",
    "006": "Tỉnh Bắc Kạn", "008": "Tỉnh Tuyên Quang", "010": "Tỉnh Lào Cai",
    "011": "Tỉnh Điện Biên", "012": "Tỉnh Lai Châu", "014": "Tỉnh Sơn La",
    "015": "Tỉnh Yên Bái", "017": "Tỉnh Hoà Bình", "019": "Tỉnh Thái Nguyên",
    "020": "Tỉnh Lạng Sơn", "022": "Tỉnh Quảng Ninh", "024": "Tỉnh Bắc Giang",
    "025": "Tỉnh Phú Thọ", "026": "Tỉnh Vĩnh Phúc", "027": "Tỉnh Bắc Ninh",
    "030": "Tỉnh Hải Dương", "031": "Thành phố Hải Phòng", "033": "Tỉnh Hưng Yên",
    "034": "Tỉnh Thái Bình", "035": "Tỉnh Hà Nam", "036": "Tỉnh Nam Định",
    "037": "Tỉnh Ninh Bình", "038": "Tỉnh Thanh Hóa", "040": "Tỉnh Nghệ An",
    "042": "Tỉnh Hà Tĩnh", "044": "Tỉnh Quảng Bình", "045": "Tỉnh Quảng Trị",
    "046": "Tỉnh Thừa Thiên Huế", "048": "Thành phố Đà Nẵng", "049": "Tỉnh Quảng Nam",
    "051": "Tỉnh Quảng Ngãi", "052": "Tỉnh Bình Định", "054": "Tỉnh Phú Yên",
    "056": "Tỉnh Khánh Hòa", "058": "Tỉnh Ninh Thuận", "060": "Tỉnh Bình Thuận",
    "062": "Tỉnh Kon Tum", "064": "Tỉnh Gia Lai", "066": "Tỉnh Đắk Lắk",
    "067": "Tỉnh Đắk Nông", "068": "Tỉnh Lâm Đồng", "070": "Tỉnh Bình Phước",
    "072": "Tỉnh Tây Ninh", "074": "Tỉnh Bình Dương", "075": "Tỉnh Đồng Nai",
    "077": "Tỉnh Bà Rịa - Vũng Tàu", "079": "Thành phố Hồ Chí Minh", "080": "Tỉnh Long An",
    "082": "Tỉnh Tiền Giang", "083": "Tỉnh Bến Tre", "084": "Tỉnh Trà Vinh",
    "086": "Tỉnh Vĩnh Long", "087": "Tỉnh Đồng Tháp", "089": "Tỉnh An Giang",
    "091": "Tỉnh Kiên Giang", "092": "Thành phố Cần Thơ", "093": "Tỉnh Hậu Giang",
    "094": "Tỉnh Sóc Trăng", "095": "Tỉnh Bạc Liêu", "096": "Tỉnh Cà Mau",
}  # fmt: skip

ID_PATTERN = rf"^({'|'.join(PROVINCES)})[0-9]{{9}}$"
"""12 digits starting with an existing province code: checked as the field's own type."""

# Digit 4: (first year of the century, gender).
_CENTURY_GENDER: dict[str, tuple[int, Gender]] = {
    "0": (1900, "nam"), "1": (1900, "nu"), "2": (2000, "nam"), "3": (2000, "nu"),
    "4": (2100, "nam"), "5": (2100, "nu"), "6": (2200, "nam"), "7": (2200, "nu"),
    "8": (2300, "nam"), "9": (2300, "nu"),
}  # fmt: skip


def encoded_birth_year(personal_id: str) -> int:
    return _CENTURY_GENDER[personal_id[3]][0] + int(personal_id[4:6])


def encoded_gender(personal_id: str) -> Gender:
    return _CENTURY_GENDER[personal_id[3]][1]


def century_gender_digit(year: int, gender: Gender) -> str:
    """Digit 4 of the ID of someone born in ``year`` of ``gender`` (the mock makes IDs with it)."""
    return str((year // 100 - 19) * 2 + (gender == "nu"))


def disagreements(personal_id: str, birth: str | None, gender: str | None) -> list[tuple[str, str]]:
    """(field, why) for each declared value the ID contradicts; empty if it may be theirs.

    ``personal_id`` must already have the ID's shape; ``birth`` starts with the year.
    """
    found = []
    year = encoded_birth_year(personal_id)
    if birth is not None and int(birth[:4]) != year:
        found.append(("ngay_sinh", f"so_dinh_danh encodes birth year {year}, not {birth[:4]}"))
    id_gender = encoded_gender(personal_id)
    if gender is not None and gender != id_gender:
        found.append(("gioi_tinh", f"so_dinh_danh encodes gender {id_gender!r}, not {gender!r}"))
    return found
