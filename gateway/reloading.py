"""The current runtime, and reloading it: serialized, all-or-nothing.

``RuntimeHolder.reload()`` builds a complete new runtime first, starts its
new hosted adapters, and swaps one reference; the old runtime retires once
its in-flight requests are done. A config with any error changes nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from adapters.base import Adapter
from adapters.logs import get_logger
from gateway.config.loader import ConfigInvalid, ConfigIssue, LoadedConfig, load_config
from gateway.hosting import start_hosted
from gateway.persistence import Persistence
from gateway.runtime import Runtime, build_runtime

START_ONLY_SECTIONS = ("server", "storage", "message_log", "delivery", "idempotency", "mocks")

log = get_logger(__name__)


class ReloadResult(msgspec.Struct):
    ok: bool
    digest: str
    issues: list[ConfigIssue] = []


class RuntimeHolder:
    """Owns the current runtime; ``reload()`` is serialized and all-or-nothing."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._current: Runtime | None = None
        self.persistence: Persistence | None = None
        """Process-level: the store and what works on it (set by the app at startup)."""
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[Any]] = set()

    @property
    def current(self) -> Runtime:
        if self._current is None:
            raise RuntimeError("gateway runtime not started")
        return self._current

    @property
    def started(self) -> bool:
        return self._current is not None

    def start(self, loaded: LoadedConfig | None = None) -> None:
        self._current = build_runtime(loaded or load_config(self.path))

    async def reload(self) -> ReloadResult:
        async with self._lock:
            old = self.current
            try:
                loaded = load_config(self.path)
                new = build_runtime(loaded, previous=old)
            except ConfigInvalid as exc:
                log.error(
                    "config_reload_rejected",
                    config=self.path,
                    errors=[str(i) for i in exc.issues],
                    kept=old.loaded.digest[:12],
                )
                return ReloadResult(ok=False, digest=old.loaded.digest, issues=exc.issues)
            try:
                await self._start_hosted(new.adapters, already=old.adapters)
            except Exception as exc:
                log.exception("config_reload_rejected", config=self.path)
                await new.retire(successor=old)  # closes what was built for it alone
                issue = loaded.issue(("upstreams",), f"an adapter could not start: {exc}")
                return ReloadResult(ok=False, digest=old.loaded.digest, issues=[issue])
            self._current = new
            fixed = [
                name
                for name in START_ONLY_SECTIONS
                if getattr(old.loaded.config, name) != getattr(loaded.config, name)
            ]
            if fixed:
                log.warning("restart_needed", sections=fixed, reason="read only at start")
            task = asyncio.create_task(old.retire(successor=new))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
            log.info("config_reloaded", config=self.path, digest=loaded.digest[:12])
            return ReloadResult(ok=True, digest=loaded.digest)

    async def start_hosted(self) -> None:
        """Start the current runtime's hosted adapters (once the persistence exist)."""
        await self._start_hosted(self.current.adapters)

    async def _start_hosted(
        self, adapters: dict[str, Adapter], already: dict[str, Adapter] | None = None
    ) -> None:
        assert self.persistence is not None, "persistence start before adapters are hosted"
        await start_hosted(adapters, self.persistence, lambda: self.current, already)

    async def close(self) -> None:
        for task in list(self._retiring):
            await task
        if self._current is not None:
            await self._current.close()
            self._current = None
