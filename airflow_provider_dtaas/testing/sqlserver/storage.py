"""T-SQL expressions <-> the storage forms of the types the double keeps in forms of its own
(datetime2(7), datetimeoffset, sql_variant as structs; hierarchyid, geography, geometry as serialized
bytes; see ``typemap``). Pure tree building: the functions called are installed by ``functions``.

- ``to_storage``: any value -> the stored form of a target type (INSERT, UPDATE, comparisons, CAST).
- ``as_text``: a stored value -> text, as CONVERT(<char type>, value[, style]) prints it.
- ``computed``: a stored value -> a single DuckDB value for use inside expressions.
"""

from __future__ import annotations

from sqlglot import exp

from airflow_provider_dtaas.testing.sqlserver.catalog import CATALOG
from airflow_provider_dtaas.testing.sqlserver.clrtypes import ClrUdtType
from airflow_provider_dtaas.testing.sqlserver.infer import STORED
from airflow_provider_dtaas.testing.sqlserver.lobs import LegacyLobType, XmlType
from airflow_provider_dtaas.testing.sqlserver.temporal import DateTime2Type, DateTimeOffsetType
from airflow_provider_dtaas.testing.sqlserver.typemap import composite
from airflow_provider_dtaas.testing.sqlserver.types import BinaryType, CharType, RowversionType, SqlType
from airflow_provider_dtaas.testing.sqlserver.variant import VariantType

DEFAULT_SRID = {"geography": 4326, "geometry": 0}
TEXT_STYLES = (0, 121, 126, 127)


def special(sql_type: SqlType | None) -> bool:
    """Whether values of ``sql_type`` must be converted into their storage form when written."""
    return sql_type is not None and (composite(sql_type) or isinstance(sql_type, ClrUdtType | XmlType))


def _varchar(value: exp.Expr) -> exp.Expr:
    return exp.cast(value, exp.DataType.build("VARCHAR"))


def _stored(value: exp.Expr) -> exp.Expr:
    """Mark ``value`` (and the columns in it) as being in storage form, so the rewrite keeps it so."""
    value.meta[STORED] = True
    for column in value.find_all(exp.Column):
        column.meta[STORED] = True
    return value


def _literal(value: object) -> exp.Expr:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def same_kind(first: SqlType | None, second: SqlType | None) -> bool:
    """Both stored alike: the same struct or the same CLR type."""
    if first is None or second is None:
        return False
    if isinstance(second, DateTime2Type):
        return isinstance(first, DateTime2Type) and composite(first) == composite(second)
    if isinstance(second, DateTimeOffsetType | VariantType):
        return isinstance(first, type(second))
    return first == second


def to_storage(value: exp.Expr, target: SqlType, source: SqlType | None, *, stored: bool) -> exp.Expr:
    """``value`` (of SQL Server type ``source`` when known; ``stored`` when it already is in the storage
    form of that type) converted into the storage form of ``target``."""
    if isinstance(value, exp.Null) or not special(target):
        return value
    if stored and same_kind(source, target):
        return _stored(value)
    text = as_text(value, source, 0) if stored and special(source) else None
    if isinstance(target, XmlType):
        return exp.func("dtaas_xml", text or _varchar(value))
    if isinstance(target, DateTime2Type):
        return exp.func("dtaas_datetime2_7", text or _varchar(value))
    if isinstance(target, DateTimeOffsetType):
        return exp.func("dtaas_datetimeoffset", text or _varchar(value))
    if isinstance(target, VariantType):
        if source is None:
            base: exp.Expr = exp.DPipe(
                this=exp.Literal.string("duckdb:"), expression=exp.func("typeof", value)
            )
        else:
            base = exp.Literal.string(source.declaration())
        raw = exp.func("hex", value) if isinstance(source, BinaryType) else text or _varchar(value)
        return exp.func("dtaas_variant", base, raw)
    assert isinstance(target, ClrUdtType)
    if isinstance(source, BinaryType | RowversionType | ClrUdtType):
        if target.name == "hierarchyid":
            return exp.func("dtaas_hierarchyid_check", value)
        return exp.func("dtaas_spatial_check", value, _literal(target.geography))
    if target.name == "hierarchyid":
        return exp.func("dtaas_hierarchyid", text or _varchar(value))
    srid = _literal(DEFAULT_SRID[target.name])
    return exp.func("dtaas_spatial", text or _varchar(value), srid, _literal(target.geography))


def as_text(value: exp.Expr, sql_type: SqlType | None, style: int | None) -> exp.Expr | None:
    """The text CONVERT(<char type>, value, style) gives for a value in storage form; None when the
    type is not special (or the style not one the double prints), so the ordinary translation applies."""
    if not special(sql_type) or (style is not None and style not in TEXT_STYLES):
        return None
    value = _stored(value)
    if isinstance(sql_type, XmlType):
        return value
    if isinstance(sql_type, DateTime2Type):
        separator = "T" if style in (126, 127) else " "
        return exp.func(f"{CATALOG}.datetime2_text", value, _literal(7), exp.Literal.string(separator))
    if isinstance(sql_type, DateTimeOffsetType):
        return exp.func(
            f"{CATALOG}.datetimeoffset_text", value, _literal(sql_type.scale), _literal(style or 0)
        )
    if isinstance(sql_type, VariantType):
        return exp.func("dtaas_variant_text", value)
    assert isinstance(sql_type, ClrUdtType)
    if sql_type.name == "hierarchyid":
        return exp.func("dtaas_hierarchyid_text", value)
    return exp.func("dtaas_spatial_text", value, _literal(sql_type.geography))


def computed(value: exp.Expr, sql_type: SqlType) -> exp.Expr:
    """A stored value as one DuckDB value for expressions: datetime2(7) -> its TIMESTAMP (microseconds),
    datetimeoffset -> its TIMESTAMPTZ instant, sql_variant -> its value text; bytes stay bytes."""
    value = _stored(value)
    if isinstance(sql_type, DateTime2Type) and composite(sql_type):
        return exp.func("struct_extract", value, exp.Literal.string("clock"))
    if isinstance(sql_type, DateTimeOffsetType):
        return exp.func("struct_extract", value, exp.Literal.string("utc"))
    if isinstance(sql_type, VariantType):
        return exp.func("struct_extract", value, exp.Literal.string("value"))
    return value


def textual(sql_type: SqlType | None) -> bool:
    return isinstance(sql_type, CharType | LegacyLobType | XmlType)


def convert(value: exp.Expr, target: SqlType, source: SqlType | None, *, stored: bool) -> exp.Expr:
    """``value`` made fit for a column of ``target``: into a stored form, or out of one."""
    if special(target):
        return to_storage(value, target, source, stored=stored)
    if stored and special(source):
        assert source is not None
        text = as_text(value, source, None) if textual(target) else None
        return text if text is not None else computed(value, source)
    return value
