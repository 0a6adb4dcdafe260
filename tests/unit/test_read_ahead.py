"""Reading ahead: items arrive in order, errors arrive where they happened, and stopping early stops the
reading thread before the caller goes on (the source connection is never shared)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import closing

import pytest

from airflow_provider_dtaas.transfers.read_ahead import read_ahead


class Source:
    """A generator-like source that records which thread read it and whether it was closed."""

    def __init__(self, items: int, *, fail_at: int | None = None, delay: float = 0.0) -> None:
        self.items, self.fail_at, self.delay = items, fail_at, delay
        self.read = 0
        self.threads: set[str] = set()
        self.closed_in: str | None = None

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        self.threads.add(threading.current_thread().name)
        if self.read == self.fail_at:
            raise ConnectionResetError(f"lost at item {self.read}")
        if self.read >= self.items:
            raise StopIteration
        time.sleep(self.delay)
        self.read += 1
        return self.read - 1

    def close(self) -> None:
        self.closed_in = threading.current_thread().name


def test_items_arrive_in_order_read_in_another_thread_and_the_source_is_closed() -> None:
    source = Source(50)
    assert list(read_ahead(source, name="reader-under-test")) == list(range(50))
    assert source.threads == {"reader-under-test"}
    assert source.closed_in == "reader-under-test"


def test_an_error_arrives_after_the_items_before_it_with_its_own_type() -> None:
    source = Source(10, fail_at=3)
    got: list[int] = []

    def consume() -> None:
        got.extend(read_ahead(source))

    with pytest.raises(ConnectionResetError, match="lost at item 3"):
        consume()
    assert got == [0, 1, 2]
    assert source.closed_in is not None


def test_reading_runs_at_most_depth_items_ahead() -> None:
    source = Source(100)
    with closing(read_ahead(source, depth=2)) as ahead:
        assert next(ahead) == 0
        time.sleep(0.3)  # the reader fills the queue and waits
        # one handed out, two waiting in the queue, one read and waiting to be put
        assert source.read <= 4


def test_closing_early_stops_and_joins_the_reader_before_returning() -> None:
    source = Source(1000, delay=0.01)
    before = threading.active_count()
    with closing(read_ahead(source, name="stopped-early")) as ahead:
        assert [next(ahead) for _ in range(3)] == [0, 1, 2]
    read_when_closed = source.read
    assert source.closed_in == "stopped-early"
    time.sleep(0.1)
    assert source.read == read_when_closed  # nothing is read after the close returned
    assert threading.active_count() == before
    assert not any(t.name == "stopped-early" for t in threading.enumerate())


def test_a_sink_error_in_the_consumer_stops_the_reader() -> None:
    source = Source(1000, delay=0.001)

    def copy() -> None:
        with closing(read_ahead(source)) as ahead:
            for item in ahead:
                if item == 5:
                    raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        copy()
    assert source.closed_in is not None
    assert source.read < 1000


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth must be at least 1"):
        next(read_ahead(iter([1]), depth=0))
