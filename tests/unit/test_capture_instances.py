"""Which capture instance a table's changes are read from, and where a snapshot resumes. No server."""

from __future__ import annotations

import pytest

from airflow_provider_dtaas.core.capture_instances import (
    WHOLE_TRANSACTION,
    CaptureInstance,
    CaptureInstanceError,
    Reading,
    choose_instance,
    snapshot_position,
)
from airflow_provider_dtaas.core.lsn import Lsn, Position

OLD = CaptureInstance("dbo_orders", Lsn(100), ("id", "qty"))
NEW = CaptureInstance("dbo_orders_v2", Lsn(200), ("id", "qty", "note"))


def at(instance: str, lsn: int) -> Position:
    return Position(instance, Lsn(lsn), WHOLE_TRANSACTION)


@pytest.mark.parametrize(
    ("saved", "expected"),
    [
        pytest.param(None, Reading(OLD, upper=Lsn(199)), id="no-position-starts-on-the-oldest"),
        pytest.param(at("dbo_orders", 150), Reading(OLD, upper=Lsn(199)), id="stays-below-the-new-start"),
        pytest.param(
            at("dbo_orders", 199), Reading(NEW, switched_from="dbo_orders"), id="switches-at-the-new-start"
        ),
        pytest.param(at("dbo_orders_v2", 250), Reading(NEW), id="already-switched"),
        pytest.param(
            at("DBO_ORDERS", 250), Reading(NEW, switched_from="dbo_orders"), id="names-compare-without-case"
        ),
    ],
)
def test_two_instances_are_read_one_after_the_other(saved: Position | None, expected: Reading) -> None:
    assert choose_instance([NEW, OLD], table="dbo.orders", saved=saved, named=None) == expected


def test_a_dropped_instance_continues_on_one_that_covers_the_position() -> None:
    reading = choose_instance([NEW], table="dbo.orders", saved=at("dbo_orders", 250), named=None)
    assert reading == Reading(NEW, switched_from="dbo_orders")


def test_a_dropped_instance_without_a_successor_is_an_error_naming_both() -> None:
    with pytest.raises(CaptureInstanceError, match=r"capture instance dbo_orders, where the saved position"):
        choose_instance([NEW], table="dbo.orders", saved=at("dbo_orders", 150), named=None)


def test_no_instance_means_cdc_is_not_enabled_and_says_how() -> None:
    with pytest.raises(CaptureInstanceError, match=r"EXEC sys\.sp_cdc_enable_table @source_schema = N'dbo'"):
        choose_instance([], table="dbo.orders", saved=None, named=None)


def test_a_named_instance_is_read_without_switching_and_must_exist() -> None:
    assert choose_instance(
        [OLD, NEW], table="dbo.orders", saved=at("dbo_orders", 300), named="dbo_orders"
    ) == (Reading(OLD))
    with pytest.raises(
        CaptureInstanceError,
        match=r"names capture instance dbo_x, which does not exist; the table has dbo_orders, dbo_orders_v2",
    ):
        choose_instance([OLD, NEW], table="dbo.orders", saved=None, named="dbo_x")


def test_a_snapshot_resumes_after_its_start_or_where_a_newer_instance_begins() -> None:
    assert snapshot_position(OLD, max_lsn=Lsn(150)) == at("dbo_orders", 150)
    # an instance enabled after the recorded max LSN holds nothing before its start
    assert snapshot_position(NEW, max_lsn=Lsn(150)) == at("dbo_orders_v2", 199)
