"""A gateway config with a catalogue: one shared service, one deprecated, a stub upstream.

``agency-a`` may call every route by its ``clients`` list; ``agency-b`` (key ``B_KEY``) only
through an access agreement.
"""

from __future__ import annotations

from pathlib import Path

from gateway.auth import hash_key
from tests.support.config import write_config

B_KEY = "test-key-agency-b-0123456789"
REQUEST = {
    "purpose": "Đối chiếu thửa đất khi tiếp nhận hồ sơ đăng ký biến động",
    "legal_basis": "Luật Đất đai 2024, Điều 60",
    "expected_volume": "500 lượt/ngày",
    "contact": {"name": "Phòng CNTT Sở B", "email": "cntt@so-b.example.gov.vn"},
}

CONFIG = """\
storage:
  url: "STORAGE_URL"
admin:
  api_keys: [{admin_key}]
clients:
  - id: agency-a
    name: Agency A
    api_keys: [{test_key}]
  - id: agency-b
    name: Agency B
    api_keys: [B_KEY_HASH]
upstreams:
  registry:
    type: stub
    operations:
      find:
        reply:
          body:
            thua_dat: "0101"
routes:
  - id: land-lookup
    match:
      method: GET
      path: /v1/land/parcels
    clients: [agency-a]
    upstream: registry
    operation: find
  - id: land-history
    match:
      method: GET
      path: /v1/land/history
    clients: [agency-a]
    upstream: registry
    operation: find
  - id: old-lookup
    match:
      method: GET
      path: /v1/old/parcels
    clients: [agency-a]
    upstream: registry
    operation: find
  - id: health-free
    match:
      method: GET
      path: /v1/free
    clients: ["*"]
    upstream: registry
    operation: find
services:
  - id: land
    name: Tra cứu thửa đất
    name_en: Land parcel lookup
    routes: [land-lookup, land-history]
    description: Tra cứu thông tin thửa đất.
    description_en: Looks land parcels up.
    owner:
      organ_id: 000.00.31.H53
      name: Sở Nông nghiệp và Môi trường
    classification: restricted
    fields:
      - name: thua_dat
        meaning: Số hiệu thửa đất
        dictionary_code: DM-TD-01
    legal_basis:
      - document: Luật Đất đai 2024
        article: Điều 60
    sla:
      availability: 99.5
      response_time: 2s
    contact:
      name: Tổ vận hành
      email: vanhanh@example.gov.vn
    examples:
      - route: land-lookup
        title: Một thửa
        response:
          thua_dat: "0101"
  - id: land-v0
    name: Tra cứu thửa đất (cũ)
    routes: [old-lookup]
    shared: false
    state: deprecated
    deprecated_since: 2026-01-01
    sunset: 2027-07-01
    successor: land
"""


def catalogue_config(directory: Path, storage_url: str) -> Path:
    text = CONFIG.replace("STORAGE_URL", storage_url).replace("B_KEY_HASH", hash_key(B_KEY))
    return write_config(directory, text)
