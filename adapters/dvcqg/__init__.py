"""``type: dvcqg``: the national public-service portal (Cổng Dịch vụ công Quốc gia).

The protocol, as the public client OpenCPS speaks it (``VietOpenCPS/opencps-v2``,
``DVCQGIntegrationActionImpl.java``), lives in ``portal`` (a session login,
the ``dstcode`` header on every request, every call ``{session, madonvi,
service, ...}`` with the service's keys at the top level, success when
``error_code`` is ``"00"`` or ``0``, one transparent re-login when the session
has expired) and ``wire`` (records sent as strings, answers read tolerantly).
Agency systems never see either: they send one record with the portal's
field names and get the portal's result data back as JSON, with our names.

A route's ``operation`` names what to do:

=============================  ==================================================
operation                      what the agency system sends / gets
=============================  ==================================================
``DongBoHoSoMC``               one dossier (``schemas.dvcqg.DongBoHoSoMC``) /
                               ``{message, MaHoSo, TrangThaiHoSo, ThoiGianDongBo}``
``CapNhatTienDoHoSoMC``        one processing step / the same receipt
``TraCuuHoSo``                 ``{ma_ho_so}`` path parameter (or ``MaHoSo`` in the
                               body or query) / the dossier; 404 if unknown
``LayThuTuc``                  ``{ma_tthc}`` path parameter (or ``MaTTHC``) / the
                               procedure with ``LinhVucThucHien``; 404 if unknown
``LayDanhSachTTHC``            query filters ``MaLinhVuc``, ``MaCoQuan`` /
                               ``{items: [...]}`` (procedures)
``LayDanhMucCoQuan``           ``MaCoQuanCha`` / ``{items}`` (agencies)
``LayDanhMucLinhVuc``          ``MaNganh`` / ``{items}`` (fields)
``DongBoHoiDap``               one question with its answer / ``{message, MaCauHoi}``
``LayDanhSachHoiDapGuiTuDVCQG``  ``TuNgay``, ``DenNgay``, ``MaCoQuan`` / ``{items}``
``paygov.create``              the fees of a dossier (``schemas.dvcqg.ThanhToanHoSo``) /
                               ``{transaction_id, trans_amount, payment_url}``
``paygov.callback``            (called by the portal, public route) the signed
                               payment result / the portal's ack
=============================  ==================================================

A dossier's status only moves forward: a ``DongBoHoSoMC`` (``TrangThaiHoSo``)
or ``CapNhatTienDoHoSoMC`` (``TrangThai``) that would move it back is refused
(409 ``dossier_status_regression``) before anything is sent; the last synced
status per ``MaHoSo`` is kept in the gateway's durable adapter state.

Errors: the portal's ``error_code`` values are configured (``error_codes``):
``auth_failed`` and a failed login -> 502 ``upstream_auth_failed``;
``data_invalid`` -> 422 ``upstream_rejected`` with the portal's message;
``not_found`` (or an empty result) -> 404 for a lookup, 422 otherwise; any other code -> 502
``upstream_error``; network failures as for every httpx adapter.
"""
