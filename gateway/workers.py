"""``serve --workers N``: N gateway processes on one listening socket.

Each worker is a full gateway process, forked after the socket is bound: its
own event loop, runtime, database pool, delivery worker and message-log chain
(the chain's id is made at its start, so per process). They share only the
database. The parent serves nothing: it runs the configured mock national
systems (once, in a process of their own, not N times on one port), forwards
SIGHUP (reload) and SIGTERM/SIGINT (graceful stop) to every worker, and starts
a worker again if one dies while the gateway is not stopping.

uvicorn's own ``workers`` option is not used: it spawns fresh interpreters
that re-import the app from a string and pickle the config, which the edge's
protocol class (made per config, ``gateway.edge.uvicorn_options``) and the
app built around a loaded config cannot pass; and its SIGHUP restarts every
worker instead of reloading each in place.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from types import FrameType

from adapters.logs import get_logger
from gateway.config.model import MockSettings
from gateway.idempotency import DATA_KEY_VARIABLE

log = get_logger(__name__)

SUPERVISOR_VARIABLE = "LGSP_WORKERS_SUPERVISOR"
"""The supervisor's pid, set for its workers."""
STARTUP_FAILURE = 3
"""uvicorn's exit status when the app's startup failed: starting again would fail again."""
MOCKS_READY_SECONDS = 15.0
PR_SET_PDEATHSIG = 1
HANDLED = {signal.SIGHUP, signal.SIGTERM, signal.SIGINT}
RESTART_PAUSE_SECONDS = 1.0
"""Between a worker's unexpected death and its successor: a crash loop does not spin."""


def supervise(
    workers: int,
    sock: socket.socket,
    serve: Callable[[int, socket.socket], None],
    mocks: Mapping[str, MockSettings],
) -> int:
    """Run ``serve(index, sock)`` in ``workers`` forked processes until SIGTERM or SIGINT."""
    _share_process_key()
    os.environ[SUPERVISOR_VARIABLE] = str(os.getpid())  # for reload_all, in the workers
    mock_pid = _start_mocks(mocks) if mocks else None
    children: dict[int, int] = {}
    stopping = False

    def spawn(index: int) -> None:
        # Signals wait until the child has its own handlers (not the parent's forward).
        signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
        pid = os.fork()
        if pid == 0:
            _run_child(lambda: serve(index, sock))
        children[pid] = index
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)

    def forward(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        if signum != signal.SIGHUP:
            stopping = True
        for pid in list(children):
            _kill(pid, signal.SIGHUP if signum == signal.SIGHUP else signal.SIGTERM)

    for index in range(workers):
        spawn(index)
    for signum in HANDLED:
        signal.signal(signum, forward)
    log.info("workers_started", workers=workers, pids=sorted(children))
    failed = False
    while children:
        pid, status = os.wait()  # a signal runs forward() and the wait goes on (PEP 475)
        if pid == mock_pid:
            log.error("mocks_exited", pid=pid)
            mock_pid = None
            continue
        if pid not in children:
            continue
        index = children.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        if stopping:
            continue
        if code == STARTUP_FAILURE:
            log.error("worker_start_failed", worker=index, pid=pid)
            failed = stopping = True
            forward(signal.SIGTERM, None)
            continue
        log.error("worker_died", worker=index, pid=pid, exit_code=code)
        time.sleep(RESTART_PAUSE_SECONDS)
        if not stopping:
            spawn(index)
    if mock_pid is not None:
        _kill(mock_pid, signal.SIGTERM)
        os.waitpid(mock_pid, 0)
    return 1 if failed else 0


def reload_all() -> None:
    """In a worker: have the supervisor send SIGHUP to every worker, so a reload asked of
    one (``POST /admin/reload``) reaches all. Nothing outside ``--workers``."""
    supervisor = os.environ.get(SUPERVISOR_VARIABLE)
    if supervisor and os.getppid() == int(supervisor):
        os.kill(int(supervisor), signal.SIGHUP)


def _share_process_key() -> None:
    """Without ``LGSP_DATA_KEY`` each process would seal idempotent answers with a key of its
    own, and a retry reaching another worker could not replay them: the workers share one
    made here, which dies with the deployment as a single process's would."""
    if os.environ.get(DATA_KEY_VARIABLE, "").strip():
        return
    log.warning(
        "data_key_missing",
        detail=f"no {DATA_KEY_VARIABLE}: idempotent answers are sealed with a key of this "
        "run's workers only, and cannot be replayed after a restart or by another replica",
    )
    key = base64.b64encode(os.urandom(32)).decode()
    os.environ[DATA_KEY_VARIABLE] = f"workers-{os.urandom(4).hex()}:{key}"


def _run_child(work: Callable[[], None]) -> None:
    """A forked child: run ``work``, then leave without the parent's cleanup."""
    code = 0
    try:
        _stop_with_parent()
        # Until the app handles SIGHUP itself, a reload request must not kill the worker;
        # uvicorn re-raises SIGTERM after its graceful stop: it is over by then.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda *_: None)
        signal.signal(signal.SIGINT, lambda *_: None)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)
        work()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        log.exception("worker_failed")
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _stop_with_parent() -> None:
    """Linux: SIGTERM this process when the parent dies (even by SIGKILL), so no worker is
    left serving the port without its supervisor."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _start_mocks(mocks: Mapping[str, MockSettings]) -> int:
    """The mock national systems in a process of their own; returns once they listen."""
    from gateway.mockrunner import start_configured

    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)

        def run() -> None:
            # a stop is awaited below (sigwait), in this thread; the mocks' thread inherits it
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
            try:
                thread = start_configured(mocks)
            except Exception as exc:
                os.write(ready_w, str(exc).encode())
                raise
            os.write(ready_w, b"ok")
            signal.sigwait({signal.SIGTERM, signal.SIGINT})
            if thread is not None:
                thread.stop()

        _run_child(run)
    os.close(ready_w)
    readable, _, _ = select.select([ready_r], [], [], MOCKS_READY_SECONDS)
    answer = os.read(ready_r, 4096).decode() if readable else ""
    os.close(ready_r)
    if answer != "ok":
        _kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        late = f"mock national systems did not start within {MOCKS_READY_SECONDS:.0f} s"
        raise RuntimeError(answer or late)
    return pid


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it has just exited: os.wait reports it
        os.kill(pid, signum)
