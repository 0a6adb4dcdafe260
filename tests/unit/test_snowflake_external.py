"""External-stage loads from the S3 manifest: every statement is parsed by sqlglot's Snowflake dialect.

What sqlglot (30.x) gives back, and so what these tests can check:

- ``COPY INTO``: the target as a ``Table`` of identifiers, the ``FILES`` names as string literals
  (a ``Tuple``, or a ``Paren`` when there is one name) and each ``FILE_FORMAT`` option (including
  ``PARSE_HEADER`` and ``NULL_IF = ()``) as a property. The ``FROM @stage/path`` location is one
  opaque ``Var`` holding the text as written: the stage name inside it is not parsed into
  identifiers, so the test compares that text instead.
- ``CREATE STAGE``: the stage as a ``Table`` and the URL as a literal, but ``STORAGE_INTEGRATION =
  "name"`` becomes a bare ``Var`` with the quotes dropped (re-rendering loses them), so only the
  name's text can be checked, not that it stayed a quoted identifier.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from airflow_provider_dtaas.core.snowflake_external import (
    MAX_FILES_PER_COPY,
    copy_from_manifest_sql,
    create_external_stage_sql,
    file_format_clause,
    string_literal,
)

RUN = "exports/sales/orders/run=r1/"


def manifest(keys: list[str], file_format: str = "parquet", compression: str = "zstd") -> dict[str, Any]:
    return {
        "format": file_format,
        "compression": compression,
        "columns": [{"name": "id", "arrow_type": "int64", "source_type": "int"}],
        "files": [{"key": k, "rows": 1, "bytes": 10, "sha256": "0" * 64, "partition": ""} for k in keys],
    }


def copy(keys: list[str], **kwargs: Any) -> list[str]:
    args: dict[str, Any] = {"stage": "DTAAS_S3", "stage_prefix": "exports/", "columns": ["ID"]}
    args.update(kwargs)
    args.setdefault("manifest", manifest(keys))
    return copy_from_manifest_sql("DB", "RAW", "ORDERS", **args)


def parse(sql: str) -> exp.Expr:
    statements = sqlglot.parse(sql, read="snowflake")
    assert len(statements) == 1, sql  # nothing ends the statement early
    assert statements[0] is not None
    return statements[0]


def table_parts(table: exp.Table) -> tuple[str, str, str]:
    return table.catalog, table.db, table.name


def copy_param(statement: exp.Expr, name: str) -> exp.CopyParameter:
    return next(p for p in statement.args["params"] if p.name.upper() == name)


def files_of(statement: exp.Expr) -> list[str]:
    value = copy_param(statement, "FILES").expression
    items = [value.this] if isinstance(value, exp.Paren) else value.expressions
    return [item.this for item in items if isinstance(item, exp.Literal) and item.is_string]


def format_options(statement: exp.Expr) -> dict[str, str]:
    return {
        p.name.upper(): p.args["value"].sql("snowflake")
        for p in copy_param(statement, "FILE_FORMAT").expressions
    }


def source_location(statement: exp.Expr) -> str:
    return statement.args["files"][0].this.this


# -- string literals --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        pytest.param("plain", "'plain'", id="plain"),
        pytest.param("it's", "'it''s'", id="quote"),
        pytest.param("a\\b", "'a\\\\b'", id="backslash"),
        pytest.param("\\'", "'\\\\'''", id="backslash-then-quote"),
        pytest.param("", "''", id="empty"),
        pytest.param("Zoë 東京", "'Zoë 東京'", id="unicode"),
    ],
)
def test_string_literal_reads_back_as_its_text(text: str, literal: str) -> None:
    assert string_literal(text) == literal
    parsed = parse(f"SELECT {literal}").expressions[0]
    assert isinstance(parsed, exp.Literal)
    assert parsed.this == text


@pytest.mark.parametrize("text", ["a\x00b", "line\nbreak", "tab\there", "del\x7f"])
def test_string_literal_refuses_control_characters(text: str) -> None:
    with pytest.raises(ValueError, match="holds control characters"):
        string_literal(text)


# -- CREATE STAGE ------------------------------------------------------------------------------


@pytest.mark.parametrize(("stage", "integration"), [("DTAAS_S3", "S3_INT"), ('my"stage', 'int"x')])
def test_create_stage_parses_with_names_and_url(stage: str, integration: str) -> None:
    sql = create_external_stage_sql(
        "DB", "RAW", stage, url="s3://acme-lake/it's/", storage_integration=integration
    )
    parsed = parse(sql)
    assert isinstance(parsed, exp.Create)
    assert parsed.kind == "STAGE"
    assert table_parts(parsed.this) == ("DB", "RAW", stage)
    props = {p.name.upper(): p.args["value"] for p in parsed.args["properties"].expressions}
    assert props["URL"].this == "s3://acme-lake/it's/"
    assert props["STORAGE_INTEGRATION"].this == integration  # a Var: sqlglot drops the quotes


@pytest.mark.parametrize(
    "url", ["https://acme-lake/x/", "s3://", "s3:///folder/", "s3://acme-lake/folder", "S3://a/"]
)
def test_create_stage_refuses_urls_that_are_not_s3_folders(url: str) -> None:
    with pytest.raises(ValueError, match="must look like s3://bucket/"):
        create_external_stage_sql("DB", "RAW", "ST", url=url, storage_integration="INT")


# -- FILE_FORMAT -------------------------------------------------------------------------------


def test_file_format_clauses() -> None:
    assert file_format_clause("parquet", "snappy") == "TYPE = PARQUET"
    assert (
        file_format_clause("jsonl", "gzip")
        == "TYPE = JSON NULL_IF = () BINARY_FORMAT = HEX COMPRESSION = GZIP"
    )
    assert file_format_clause("csv", "none") == (
        "TYPE = CSV PARSE_HEADER = TRUE FIELD_OPTIONALLY_ENCLOSED_BY = '\"' NULL_IF = ()"
        " EMPTY_FIELD_AS_NULL = TRUE ESCAPE_UNENCLOSED_FIELD = NONE BINARY_FORMAT = HEX COMPRESSION = NONE"
    )
    assert file_format_clause("csv", "gzip", ";").endswith("COMPRESSION = GZIP FIELD_DELIMITER = ';'")
    assert file_format_clause("csv", "none", "\t").endswith("FIELD_DELIMITER = '0x09'")
    assert file_format_clause("csv", "none", "'").endswith("FIELD_DELIMITER = ''''")


@pytest.mark.parametrize(
    ("file_format", "compression", "delimiter", "message"),
    [
        pytest.param("avro", "none", None, "cannot load 'avro' files", id="format"),
        pytest.param("csv", "zstd", None, "with compression 'zstd'", id="compression"),
        pytest.param("csv", "none", '"', "must be one character other than a quote", id="quote-delimiter"),
        pytest.param("csv", "none", ";;", "must be one character", id="long-delimiter"),
    ],
)
def test_file_format_refusals(
    file_format: str, compression: str, delimiter: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        file_format_clause(file_format, compression, delimiter)


# -- COPY INTO ---------------------------------------------------------------------------------


def test_parquet_copy_names_exactly_the_manifest_files() -> None:
    keys = [f"{RUN}part-00000-00000.parquet", f"{RUN}part-00001-00000.parquet"]
    [sql] = copy(keys)
    assert sql == (
        'COPY INTO "DB"."RAW"."ORDERS" FROM @"DB"."RAW"."DTAAS_S3"/sales/orders/run=r1/'
        " FILES = ('part-00000-00000.parquet', 'part-00001-00000.parquet')"
        " FILE_FORMAT = (TYPE = PARQUET) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE ON_ERROR = ABORT_STATEMENT"
    )
    parsed = parse(sql)
    assert isinstance(parsed, exp.Copy)
    assert table_parts(parsed.this) == ("DB", "RAW", "ORDERS")
    assert source_location(parsed) == '@"DB"."RAW"."DTAAS_S3"/sales/orders/run=r1/'
    assert files_of(parsed) == ["part-00000-00000.parquet", "part-00001-00000.parquet"]
    assert format_options(parsed) == {"TYPE": "PARQUET"}
    assert copy_param(parsed, "MATCH_BY_COLUMN_NAME").expression.name == "CASE_INSENSITIVE"
    assert copy_param(parsed, "ON_ERROR").expression.name == "ABORT_STATEMENT"


@pytest.mark.parametrize(
    ("file_format", "compression"), [("csv", "gzip"), ("csv", "none"), ("jsonl", "none")]
)
def test_text_copies_parse_with_every_format_option(file_format: str, compression: str) -> None:
    keys = [f"{RUN}region=EU/part-00000-00000.x", f"{RUN}region=US/part-00000-00000.x"]
    [sql] = copy(keys, manifest=manifest(keys, file_format, compression), csv_delimiter="|")
    parsed = parse(sql)
    assert files_of(parsed) == ["region=EU/part-00000-00000.x", "region=US/part-00000-00000.x"]
    options = format_options(parsed)
    assert options["COMPRESSION"] == compression.upper()
    assert options["NULL_IF"] == "()"
    if file_format == "csv":
        assert options["TYPE"] == "CSV"
        assert options["PARSE_HEADER"] == "TRUE"
        assert options["FIELD_OPTIONALLY_ENCLOSED_BY"] == "'\"'"
        assert options["EMPTY_FIELD_AS_NULL"] == "TRUE"
        assert options["FIELD_DELIMITER"] == "'|'"
    else:
        assert options["TYPE"] == "JSON"
        assert "FIELD_DELIMITER" not in options
    assert copy_param(parsed, "MATCH_BY_COLUMN_NAME").expression.name == "CASE_INSENSITIVE"


def test_hostile_names_and_keys_stay_inside_identifiers_and_literals() -> None:
    keys = [f"{RUN}it's/part-0.parquet", f"{RUN}a\\b; DROP TABLE x --.parquet"]
    [sql] = copy_from_manifest_sql(
        "DB",
        "RAW",
        'ord"ers',
        stage='st"age',
        stage_prefix="exports",
        manifest=manifest(keys),
        columns=["id"],
    )
    assert "'it''s/part-0.parquet'" in sql
    parsed = parse(sql)
    assert table_parts(parsed.this) == ("DB", "RAW", 'ord"ers')
    assert source_location(parsed) == '@"DB"."RAW"."st""age"/sales/orders/run=r1/'
    assert files_of(parsed) == ["it's/part-0.parquet", "a\\b; DROP TABLE x --.parquet"]


def test_a_folder_that_cannot_stand_unquoted_moves_into_the_file_names() -> None:
    keys = ["exports/my table/run=1/part-0.parquet", "exports/my table/run=1/part-1.parquet"]
    [sql] = copy(keys)
    parsed = parse(sql)
    assert source_location(parsed) == '@"DB"."RAW"."DTAAS_S3"'
    assert files_of(parsed) == ["my table/run=1/part-0.parquet", "my table/run=1/part-1.parquet"]


def test_more_than_1000_files_split_into_statements_covering_each_file_once() -> None:
    keys = [f"{RUN}part-{i:05d}-00000.parquet" for i in range(2 * MAX_FILES_PER_COPY + 1)]
    statements = copy(keys)
    assert len(statements) == 3
    loaded = [f"{RUN}{name}" for sql in statements for name in files_of(parse(sql))]
    assert loaded == keys
    assert [len(files_of(parse(sql))) for sql in statements] == [1000, 1000, 1]


def test_an_empty_manifest_loads_nothing() -> None:
    assert copy([]) == []


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("other/run=1/part-0.parquet", id="other-folder"),
        pytest.param("exports2/run=1/part-0.parquet", id="same-start"),
        pytest.param("exports/", id="the-prefix-itself"),
    ],
)
def test_a_key_outside_the_stage_prefix_is_refused(key: str) -> None:
    with pytest.raises(ValueError, match=r"outside the stage prefix 'exports/', e\.g\. '"):
        copy([f"{RUN}part-0.parquet", key], stage_prefix="exports")


def test_a_stage_at_the_bucket_root_takes_whole_keys() -> None:
    [sql] = copy([f"{RUN}part-0.parquet"], stage_prefix="")
    parsed = parse(sql)
    assert source_location(parsed) == '@"DB"."RAW"."DTAAS_S3"/exports/sales/orders/run=r1/'
    assert files_of(parsed) == ["part-0.parquet"]


def test_manifest_and_column_refusals() -> None:
    with pytest.raises(ValueError, match="more than once"):
        copy([f"{RUN}a.parquet", f"{RUN}a.parquet"])
    with pytest.raises(ValueError, match=r"columns \['id'\] that the table lacks"):
        copy([f"{RUN}a.parquet"], columns=["ORDER_ID"])
    with pytest.raises(ValueError, match=r"table columns \['ID', 'id'\] differ only by case"):
        copy([f"{RUN}a.parquet"], columns=["ID", "id"])
    with pytest.raises(ValueError, match="without a header line"):
        copy([f"{RUN}a.csv"], manifest=manifest([f"{RUN}a.csv"], "csv", "none"), csv_header=False)
