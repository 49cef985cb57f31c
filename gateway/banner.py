"""What ``serve`` says once it is up: where everything is, in one place.

On a terminal a short block a person reads; for a log collector (JSON logs)
the same facts as one ``gateway_started`` event. Public demo keys still in the
configuration are named: welcome on a laptop, a warning anywhere else.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from sqlalchemy.engine import make_url

from adapters import registry
from adapters.logs import get_logger
from gateway.auth import hash_key
from gateway.config.loader import LoadedConfig

log = get_logger("gateway.started")

DEMO_KEYS = ("lgsp_demo_motcua_2026", "lgsp_demo_qlvb_2026", "lgsp_demo_admin_2026")
"""The keys of ``config/gateway.yaml``, published in the README: never for production."""


def facts(loaded: LoadedConfig, host: str, port: int) -> dict[str, Any]:
    config = loaded.config
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    base = f"http://{shown}:{port}"
    systems = registry.mock_systems()
    mocks = {
        name: f"http://{m.host}:{m.port or systems[name].default_port}"
        for name, m in config.mocks.items()
        if name in systems
    }
    holders: dict[str, str] = {hash_key(key): key for key in DEMO_KEYS}
    demo_keys = {
        client.id: holders[h] for client in config.clients for h in client.api_keys if h in holders
    }
    demo_keys.update(("admin", holders[h]) for h in config.admin.api_keys if h in holders)
    metrics = (
        f"http://{config.server.metrics_listen}/metrics"
        if config.server.metrics_listen
        else f"{base}/metrics (admin key)"
    )
    return {
        "gateway": base,
        "api_docs": f"{base}/docs",
        "admin_console": f"{base}/admin/ui",
        "metrics": metrics,
        "config": loaded.path,
        "storage": storage(config.storage.url, os.path.dirname(loaded.path)),
        "mocks": mocks,
        "demo_keys": demo_keys,
        "tracing": config.tracing.exporter if config.tracing.enabled else "off",
    }


def storage(url: str, config_dir: str) -> str:
    """Where the data is: a SQLite file's absolute path, or the database URL without password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, ":memory:"):
        return os.path.abspath(os.path.join(config_dir, parsed.database or ""))
    return parsed.render_as_string(hide_password=True)


def text(found: dict[str, Any]) -> str:
    lines = [
        "",
        f"  LGSP gateway      {found['gateway']}",
        f"  API docs          {found['api_docs']}",
        f"  Admin console     {found['admin_console']}",
        f"  Metrics           {found['metrics']}",
        f"  Config            {found['config']}",
        f"  Data              {found['storage']}",
        f"  Tracing           {found['tracing']}",
    ]
    if found["mocks"]:
        lines.append("  Mock national systems (demo):")
        lines += [f"    {name:<16}{url}" for name, url in found["mocks"].items()]
    if found["demo_keys"]:
        lines.append("  Demo API keys (public: replace them before real use):")
        lines += [f"    {who:<16}{key}" for who, key in found["demo_keys"].items()]
    lines.append("")
    return "\n".join(lines)


def announce(loaded: LoadedConfig, host: str, port: int, *, console: bool) -> None:
    found = facts(loaded, host, port)
    if console:
        sys.stdout.write(text(found) + "\n")
        sys.stdout.flush()
    else:
        log.info("gateway_started", **found)
