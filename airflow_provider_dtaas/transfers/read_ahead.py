"""Read ahead: the source's next batch is fetched in a thread while the current one is written.

A chunk copy alternates two waits: the source driver fetching and decoding rows, and the sinks
encoding Parquet and uploading. Both release the GIL for most of their work (the Arrow readers,
Parquet encoding, sockets), so running the fetch one batch ahead overlaps them: on the PostgreSQL
bench the copy's data path is about a third shorter (``make bench BENCH=pg_source``).

Memory stays bounded: at most ``depth`` batches wait between the two sides, besides the one being
written and the one being fetched. The iterator is consumed, closed and joined in its own thread,
so the source connection is never used by two threads at once: when the consumer stops early (an
error in a sink, a killed task), the reader is told to stop, finishes the fetch it is in and closes
the source's cursor before :func:`read_ahead` returns. The reading thread runs in a copy of the
caller's context, so its log lines keep the task's table and run.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Generator, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_POLL_SECONDS = 0.1


class _End:
    """What the reading thread puts last: the error that stopped it, or ``None`` at the end."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class _Reader(Generic[T]):
    def __init__(self, source: Iterator[T], depth: int) -> None:
        self.source = source
        self.queue: queue.Queue[T | _End] = queue.Queue(maxsize=depth)
        self.stop = threading.Event()

    def run(self) -> None:
        error: BaseException | None = None
        try:
            for item in self.source:
                if not self._put(item):
                    break
        except BaseException as err:  # handed to the consumer, which raises it
            error = err
        finally:
            close = getattr(self.source, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as err:  # the cursor's close failing is the error to report
                    error = error or err
        self._put(_End(error))

    def _put(self, item: T | _End) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False


def read_ahead(
    source: Iterator[T], *, depth: int = 1, name: str = "dtaas-read-ahead"
) -> Generator[T, None, None]:
    """Yield ``source``'s items, fetching up to ``depth`` of them ahead in a thread.

    Errors raised by ``source`` are raised here, at the item where they happened, with their own
    type and traceback. Closing this generator early stops and joins the thread.
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, not {depth}")
    reader = _Reader(source, depth)
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(reader.run,), name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = reader.queue.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        reader.stop.set()
        thread.join()
