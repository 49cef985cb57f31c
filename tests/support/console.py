"""A gateway for console tests: a stub route with kept bodies, an async route whose upstream
is down (its messages go dead at once), and helpers to sign in through the real forms."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.support.config import TEST_ADMIN_KEY, write_config
from tests.support.servers import free_port

CONSOLE_CONFIG = """\
storage: {{url: "sqlite:///@DB@"}}
delivery: {{max_attempts: 1, poll_interval: 50ms, backoff: 10ms}}
admin:
  api_keys: [{admin_key}]
clients:
  - id: motcua-a
    name: Một cửa huyện A
    api_keys: [{test_key}]
upstreams:
  registry:
    type: stub
    operations:
      find: {{reply: {{body: {{found: true, so_dinh_danh: "{{{{ body.so_dinh_danh }}}}"}}}}}}
  inbox:
    type: http
    base_url: http://127.0.0.1:@PORT@
    headers: {{Authorization: "Bearer super-secret-token"}}
routes:
  - id: find-citizen
    summary: Find a citizen
    match: {{method: POST, path: /v1/find}}
    clients: ["*"]
    upstream: registry
    operation: find
    message_log: {{bodies: true}}
  - id: send-report
    match: {{method: POST, path: /v1/reports}}
    clients: ["*"]
    upstream: inbox
    operation: /reports
    delivery: async
    timeout: 2s
"""


def console_config(directory: Path) -> Path:
    text = CONSOLE_CONFIG.replace("@DB@", str(directory / "gateway.db"))
    text = text.replace("@PORT@", str(free_port()))  # nothing listens there
    return write_config(directory, text)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found[1]


def sign_in(client: Any, key: str = TEST_ADMIN_KEY) -> Any:
    """Sign in through the login form, as a browser would; returns the answer to the POST."""
    page = client.get("/admin/ui/login")
    return client.post(
        "/admin/ui/login", data={"csrf": csrf_of(page.text), "key": key}, follow_redirects=False
    )
