"""The SQLite message log's writer: a process of its own, fed batches over a pipe.

Why a process and not a thread: a thread shares the gateway's GIL, and the event
loop paid for every hand-over of it. With the writer on a thread, the loop's CPU
per request rose by about 55 us when the thread only slept instead of writing,
and by about 75 us with the real INSERT (``bench/README.md``, "fourth pass: the
SQLite log writer in a process of its own"). In a process of its own the writer
binds, inserts and fsyncs under its own GIL; the loop only pickles the batch and
writes it to a pipe.

The parent (``appender._SqliteAppender``) runs this file as ``python -I -S
sqlite_writer.py``: standard library only, so it starts in milliseconds and
imports nothing from the environment. Frames, both ways, are a 4-byte big-endian
length and a pickle; both ends are this gateway and the pipe is private to them.

- first frame in: ``(path, pragmas, insert, row_marks)``;
- each next frame in: a batch, a list of rows (tuples of values, in the order of
  the insert's columns); the answer is ``None`` once they are committed, or
  ``(error type, message)``.

End of input (the gateway closed the pipe, or died) ends the process, and
nothing else does: it ignores the signals a terminal or a service manager sends
to the whole group (SIGINT, SIGTERM, SIGHUP), so that while the gateway shuts
down gracefully, the records of its last requests still get written.
"""

from __future__ import annotations

import pickle
import signal
import sqlite3
import struct
import sys
from functools import lru_cache
from typing import IO, Any

HEADER = struct.Struct(">I")


def frame(value: Any) -> bytes:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def read_frame(source: IO[bytes]) -> Any:
    """The next frame's value; ``EOFError`` at the end of input."""
    head = source.read(HEADER.size)
    if len(head) < HEADER.size:
        raise EOFError
    (size,) = HEADER.unpack(head)
    data = source.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


def serve(source: IO[bytes], sink: IO[bytes]) -> None:
    setup: tuple[str, tuple[str, ...], str, str] = read_frame(source)
    path, pragmas, insert, row_marks = setup
    # Autocommit: the multi-row INSERT is its own transaction, committed in the same step.
    connection = sqlite3.connect(path, isolation_level=None)
    for pragma in pragmas:
        connection.execute(pragma)

    @lru_cache(maxsize=128)  # as many as sqlite3 keeps compiled
    def statement(rows: int) -> str:
        return insert + ", ".join([row_marks] * rows)

    try:
        while True:
            try:
                rows = read_frame(source)
            except EOFError:
                return
            reply: tuple[str, str] | None = None
            try:
                connection.execute(statement(len(rows)), [v for row in rows for v in row])
            except Exception as exc:  # the batch's requests get 503; the writer goes on
                reply = (type(exc).__name__, str(exc))
            try:
                sink.write(frame(reply))
                sink.flush()
            except BrokenPipeError:  # the gateway died waiting: the batch is in, nobody to tell
                return
    finally:
        connection.close()


if __name__ == "__main__":
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    serve(sys.stdin.buffer, sys.stdout.buffer)
