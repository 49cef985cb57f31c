"""JSON answers of the population routes: clean snake_case, whatever the SOAP side calls things.

A key whose value the national system did not give is ``null``, never dropped,
so an agency system can rely on the shape. Values are passed on as given
(codes or names: the samples show both) except gender, normalized to
``nam``/``nu``, and dates, turned into ``YYYY-MM-DD`` (or ``YYYY``).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from schemas.population.ids import Gender

Relation = Literal["cha", "me", "vo_chong", "nguoi_dai_dien"]
"""Father, mother, spouse, legal representative (Cha, Me, VoChong, NguoiDaiDien)."""


class _Answer(msgspec.Struct, kw_only=True):
    pass


class HoVaTen(_Answer):
    ho: str | None
    chu_dem: str | None
    ten: str | None
    day_du: str | None
    """The parts joined: how the name is written on papers."""


class DiaChi(_Answer):
    ma_tinh: str | None
    ten_tinh: str | None
    """From our own province table when ``ma_tinh`` is a province code we know."""
    ma_quan_huyen: str | None
    ma_phuong_xa: str | None
    chi_tiet: str | None
    quoc_gia: str | None


class NguoiLienQuan(_Answer):
    """Father, mother, spouse, legal representative."""

    ho_va_ten: str | None
    so_dinh_danh: str | None
    so_cmnd: str | None
    quoc_tich: str | None


class ChuHo(_Answer):
    """The head of the household the citizen is registered in."""

    quan_he: str | None
    """The citizen's relation to the head ("Chủ hộ" for the head)."""
    ho_va_ten: str | None
    so_dinh_danh: str | None
    so_cmnd: str | None


class CongDan(_Answer):
    so_dinh_danh: str | None
    so_cmnd: str | None
    ho_va_ten: HoVaTen | None
    gioi_tinh: Gender | None
    ngay_sinh: str | None
    dan_toc: str | None
    ton_giao: str | None
    tinh_trang_hon_nhan: str | None
    nhom_mau: str | None
    quoc_tich: str | None
    noi_dang_ky_khai_sinh: DiaChi | None
    que_quan: DiaChi | None
    thuong_tru: DiaChi | None
    noi_o_hien_tai: DiaChi | None
    cha: NguoiLienQuan | None
    me: NguoiLienQuan | None
    vo_chong: NguoiLienQuan | None
    nguoi_dai_dien: NguoiLienQuan | None
    chu_ho: ChuHo | None
    so_so_ho_khau: str | None


class CitizenLookupAnswer(_Answer):
    """``lookup``: the citizen found. Not found is a 404 problem (``not_found``), not this."""

    ma_yeu_cau: str
    """The gateway request id, sent upstream as MaYeuCau: quote it to the national system."""
    cong_dan: CongDan
    ton_tai: bool = True
    """Always true here; kept so that agency systems written against the mock still read it."""
    thoi_diem_du_lieu: str | None = None
    """When the national data was current (the answer's ``ThoiDiemDuLieu``), as it wrote it."""


class CitizenVerifyAnswer(_Answer):
    """``verify``: whether the declared data matches one citizen of the national database.

    The national system answers one yes/no (``TonTai``) for all the declared
    values together; it does not say which one differs, so neither can we.
    """

    khop: bool
    ma_yeu_cau: str
    da_doi_chieu: list[str]
    """The declared fields the national system compared (sent upstream)."""


class RelativeCheck(_Answer):
    """One declared relative against the national record."""

    quan_he: Relation
    khop: bool
    """Every declared value matches the relative on record (false if none is on record)."""
    da_doi_chieu: list[str]
    """The declared fields compared (``so_dinh_danh``, ``ho_va_ten``)."""


class CitizenRelativesAnswer(_Answer):
    """``relatives``: whether the declared relatives are those on record; nothing else of theirs.

    The citizen unknown (or not matching the declared name/birth date) is a
    404 problem (``not_found``), not this.
    """

    khop: bool
    """All the declared relatives match."""
    ma_yeu_cau: str
    nguoi_than: list[RelativeCheck]
