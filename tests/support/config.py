"""Config files for tests: the repository's paths, demo and test API keys, YAML in temp dirs."""

from __future__ import annotations

import textwrap
from pathlib import Path

from gateway.auth import hash_key

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = ROOT / "config" / "gateway.yaml"

MOTCUA_KEY = "lgsp_demo_motcua_2026"
QLVB_KEY = "lgsp_demo_qlvb_2026"
ADMIN_KEY = "lgsp_demo_admin_2026"
TEST_KEY = "test-key-0123456789"
TEST_ADMIN_KEY = "test-admin-key-0123456789"

BASE_CONFIG = """\
admin:
  api_keys: [{admin_key}]
clients:
  - id: agency-a
    name: Agency A
    api_keys: [{test_key}]
"""


def write_config(directory: Path, text: str, name: str = "gateway.yaml") -> Path:
    """Write a YAML file (dedented); ``{test_key}`` etc. are filled with key hashes."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        textwrap.dedent(text).format(
            test_key=hash_key(TEST_KEY), admin_key=hash_key(TEST_ADMIN_KEY)
        ),
        encoding="utf-8",
    )
    return path
