"""Which key a table is read and chunked by."""

from __future__ import annotations

import pytest

from airflow_provider_dtaas.core.source_table import KeyChoiceError, SourceTable
from airflow_provider_dtaas.core.typemap import SourceColumn

COLUMNS = [
    SourceColumn("id", "int", nullable=False),
    SourceColumn("code", "nvarchar", nullable=False, max_length=10),
    SourceColumn("email", "nvarchar", nullable=True, max_length=100),
    SourceColumn("total", "decimal", precision=10, scale=2, computed=True),
]


def test_the_primary_key_wins() -> None:
    table = SourceTable("dbo", "t", COLUMNS, primary_key=["id"], unique_keys={"ux_code": ["code"]})
    assert table.read_key() == ["id"]
    assert table.computed_columns == ["total"]


def test_a_not_null_unique_index_stands_in_for_a_missing_primary_key() -> None:
    table = SourceTable("dbo", "t", COLUMNS, unique_keys={"ux_email": ["email"], "ux_code": ["code"]})
    assert table.read_key() == ["code"]  # email may be NULL, so it cannot order a chunked read


def test_a_heap_has_no_read_key() -> None:
    assert SourceTable("dbo", "t", COLUMNS, unique_keys={"ux_email": ["email"]}).read_key() == []


def test_the_spec_key_is_checked_against_the_table() -> None:
    table = SourceTable("dbo", "t", COLUMNS)
    assert table.read_key(("CODE", "id")) == ["code", "id"]
    with pytest.raises(KeyChoiceError, match=r"table dbo.t: primary_key names nope, which the table"):
        table.read_key(("nope",))
    with pytest.raises(KeyChoiceError, match=r"primary_key column email allows NULL"):
        table.read_key(("email",))
