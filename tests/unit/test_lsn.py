"""LSN arithmetic and CDC windows. No server."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_dtaas.core.lsn import (
    ZERO,
    Lsn,
    LsnError,
    Position,
    RetentionGapError,
    Window,
    next_window,
)

lsns = st.binary(min_size=10, max_size=10)


@given(lsns, lsns)
def test_lsns_order_as_their_bytes(a: bytes, b: bytes) -> None:
    assert (Lsn.from_bytes(a) < Lsn.from_bytes(b)) == (a < b)
    assert Lsn.parse(Lsn.from_bytes(a).hex()).to_bytes() == a


def test_text_forms() -> None:
    lsn = Lsn.parse("0x0000002a000001f00003")
    assert lsn.hex() == "0x0000002A000001F00003"
    assert lsn.increment().hex() == "0x0000002A000001F00004"
    assert Lsn.parse("0000002A000001F000FF").increment().hex() == "0x0000002A000001F00100"
    with pytest.raises(LsnError, match=r"'0x12' is not an LSN: expected 0x and 20 hex digits"):
        Lsn.parse("0x12")
    with pytest.raises(LsnError, match="an LSN is 10 bytes, got 3"):
        Lsn.from_bytes(b"abc")


def test_positions_survive_json() -> None:
    position = Position(
        "dbo_orders", Lsn.parse("0x0000002A000001F00003"), Lsn.parse("0x0000002A000001F00002")
    )
    assert Position.from_json(position.to_json()) == position


MIN, MAX = Lsn(100), Lsn(200)


@pytest.mark.parametrize(
    ("saved", "window"),
    [
        (None, Window(MIN, MAX)),  # first run: everything still held
        (Lsn(99), Window(MIN, MAX)),  # saved just below the minimum: nothing was lost
        (Lsn(150), Window(Lsn(151), MAX)),
        (Lsn(199), Window(MAX, MAX)),
        (Lsn(200), None),  # caught up: no query (the function would raise Msg 313)
    ],
)
def test_next_window(saved: Lsn | None, window: Window | None) -> None:
    assert next_window(saved, min_lsn=MIN, max_lsn=MAX, capture_instance="dbo_t", table="dbo.t") == window


def test_a_position_below_the_retention_is_a_gap_with_its_way_out() -> None:
    with pytest.raises(RetentionGapError) as caught:
        next_window(Lsn(50), min_lsn=MIN, max_lsn=MAX, capture_instance="dbo_t", table="dbo.t")
    message = str(caught.value)
    assert message.startswith(
        "table dbo.t: the saved CDC position 0x00000000000000000032 is older than the oldest change "
        "capture instance dbo_t still holds (0x00000000000000000064)"
    )
    assert "gap_policy: resnapshot" in message


def test_an_unknown_capture_instance_is_named() -> None:
    with pytest.raises(RetentionGapError, match=r"capture instance dbo_x does not exist or holds no changes"):
        next_window(None, min_lsn=ZERO, max_lsn=MAX, capture_instance="dbo_x", table="dbo.x")


def test_an_lsn_is_bound_as_binary() -> None:
    parameter = Lsn.parse("0x30313233343536373839").to_parameter()  # bytes that read as "0123456789"
    assert isinstance(parameter, bytearray)
    assert bytes(parameter) == b"0123456789"


def test_a_position_ahead_of_the_database_is_refused_as_a_restore() -> None:
    with pytest.raises(RetentionGapError, match=r"is ahead of the newest change SQL Server holds"):
        next_window(Lsn(500), min_lsn=Lsn(100), max_lsn=Lsn(400), capture_instance="dbo_t", table="dbo.t")
    # a capture instance that started after the max LSN (no change yet) is not a restore
    assert (
        next_window(Lsn(449), min_lsn=Lsn(450), max_lsn=Lsn(400), capture_instance="dbo_t", table="dbo.t")
        is None
    )
