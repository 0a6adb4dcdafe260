"""T-SQL that touches the specially stored types, rewritten into calls DuckDB can run (before the
dialect translation in ``translate``):

- CLR static methods and methods: ``geography::STGeomFromText(wkt, srid)``, ``geography::Point(lat,
  long, srid)``, ``geometry::STGeomFromWKB(wkb, srid)``, ``hierarchyid::Parse(s)``, ``[g].STAsBinary()``,
  ``[g].STAsText()``, ``[h].ToString()``, ``[h].GetLevel()``;
- CAST/CONVERT from these types to text (``CONVERT(NVARCHAR(4000), [h])``, ``CONVERT(VARCHAR(34),
  [dto], 121)``) and into them (``CAST('/1/' AS hierarchyid)``, ``CAST(x AS sql_variant)``);
- comparisons of a stored column with any other value, which is converted to the stored form;
- any other use of a datetime2(7)/datetimeoffset/sql_variant column inside an expression, which reads
  its single computed value (see ``storage.computed``). A column selected as is keeps its stored form,
  so the wire gets every digit and the original offset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from airflow_provider_dtaas.testing.sqlserver import assign, storage
from airflow_provider_dtaas.testing.sqlserver.clrtypes import ClrUdtType
from airflow_provider_dtaas.testing.sqlserver.errors import SqlServerError, not_supported
from airflow_provider_dtaas.testing.sqlserver.infer import (
    STORED,
    column_type,
    expression_type,
    handed_over,
    storage_form_of_cast,
    stored_type,
    with_offset_text,
)
from airflow_provider_dtaas.testing.sqlserver.lobs import XmlType
from airflow_provider_dtaas.testing.sqlserver.resolve import Lookup
from airflow_provider_dtaas.testing.sqlserver.typemap import (
    UnsupportedType,
    composite,
    declared_type,
    storage_type,
)
from airflow_provider_dtaas.testing.sqlserver.types import BinaryType, IntType, RowversionType, SqlType

_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ)
_KEEPS_STORED = (exp.Ordered, exp.Group, exp.Max, exp.Min, exp.Count, exp.Is, exp.Distinct)
_FROM_TEXT = ("STGEOMFROMTEXT", "STPOINTFROMTEXT", "STLINEFROMTEXT", "STPOLYFROMTEXT", "STMPOINTFROMTEXT",
              "STMLINEFROMTEXT", "STMPOLYFROMTEXT", "STGEOMCOLLFROMTEXT")  # fmt: skip
_LOWERED = "dtaas_lowered"
_PROPERTIES = ("STSRID", "STX", "STY", "LAT", "LONG")
_FROM_WKB = tuple(name.replace("TEXT", "WKB") for name in _FROM_TEXT)


class _Rewriter:
    def __init__(self, lookup: Lookup, params: Mapping[str, Any] | None) -> None:
        self.lookup = lookup
        self.params = params

    def lower(self, node: exp.Expr) -> exp.Expr:
        return node.transform(self._node, copy=False)

    def type_of(self, node: exp.Expr) -> SqlType | None:
        return expression_type(node, self.lookup, self.params)

    def stored(self, node: exp.Expr) -> SqlType | None:
        return stored_type(node, self.lookup)

    def into(self, value: exp.Expr, target: SqlType) -> exp.Expr:
        """Any value (lowered first) -> the storage form of ``target``."""
        value = with_offset_text(value, self.params)
        held = self.stored(value)
        if held is not None and isinstance(value, exp.Column):
            value.meta[STORED] = True  # a stored column is converted as is, not as its computed value
        source = held or self.type_of(value)
        return storage.to_storage(self.lower(value), target, source, stored=held is not None)

    def _node(self, node: exp.Expr) -> exp.Expr:
        if node.meta.get(_LOWERED):
            return node
        if isinstance(node, exp.ScopeResolution):
            return self._static(node)
        if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Anonymous):
            return self._method(node)
        if isinstance(node, exp.Cast | exp.Convert):
            return self._cast(node)
        if isinstance(node, _COMPARISONS) and not isinstance(node.parent, exp.Update):  # not SET a = b
            return self._comparison(node)
        if isinstance(node, exp.Between | exp.In):
            return self._range(node)
        if isinstance(node, exp.Column) and node.table and node.name.upper() in _PROPERTIES:
            owner = self._property_owner(node)
            if owner is not None:
                return _done(self._property(node, owner))
        if isinstance(node, exp.Column) and not node.meta.get(STORED):
            sql_type = column_type(node, self.lookup)
            if sql_type is not None and composite(sql_type) and not _keeps_stored(node):
                return storage.computed(node, sql_type)
        return node

    # -- CLR types ----------------------------------------------------------------------------------

    def _static(self, node: exp.ScopeResolution) -> exp.Expr:
        type_name, call = node.this.name.lower(), node.expression
        if not isinstance(call, exp.Anonymous) or type_name not in storage.DEFAULT_SRID | {"hierarchyid": 0}:
            raise not_supported(f"'{node.sql('tsql')}'")
        method = call.name.upper()
        args = [self.lower(arg) for arg in call.expressions]
        if type_name == "hierarchyid":
            if method == "PARSE" and len(args) == 1:
                return exp.func("dtaas_hierarchyid", args[0])
            if method == "GETROOT" and not args:
                return exp.func("dtaas_hierarchyid", exp.Literal.string("/"))
            raise not_supported(f"hierarchyid::{call.name}")
        geography = exp.Boolean(this=type_name == "geography")
        default_srid = exp.Literal.number(storage.DEFAULT_SRID[type_name])
        if method in (*_FROM_TEXT, "PARSE") and len(args) in (1, 2):
            return exp.func("dtaas_spatial", args[0], args[1] if len(args) == 2 else default_srid, geography)
        if method in _FROM_WKB and len(args) == 2:
            return exp.func("dtaas_spatial_from_wkb", args[0], args[1], geography)
        if method == "POINT" and len(args) == 3:
            return exp.func("dtaas_spatial_point", *args, geography)
        raise not_supported(f"{type_name}::{call.name}")

    def _method(self, node: exp.Dot) -> exp.Expr:
        parts = _dotted(node.this)
        call = node.expression
        column = exp.column(parts[-1], table=parts[-2] if len(parts) > 1 else None)
        column.parent = node.parent  # so the column finds its statement's tables
        sql_type = column_type(column, self.lookup)
        if not isinstance(sql_type, ClrUdtType):
            raise not_supported(f"The method {call.name}() on '{'.'.join(parts)}'")
        value = storage.computed(column, sql_type)
        method = call.name.upper()
        if method in ("TOSTRING", "STASTEXT", "ASTEXTZM"):
            text = storage.as_text(value, sql_type, None)
            assert text is not None
            return text
        if method == "STASBINARY" and sql_type.name != "hierarchyid":
            return exp.func("dtaas_spatial_wkb", value, exp.Boolean(this=sql_type.geography))
        if method == "GETLEVEL" and sql_type.name == "hierarchyid":
            return exp.func("dtaas_hierarchyid_level", value)
        raise not_supported(f"The method {sql_type.name}::{call.name}()")

    def _property_owner(self, node: exp.Column) -> exp.Column | None:
        """For ``g.STSrid``, the column ``g`` when it is a CLR column (and ``g`` is no table of that name)."""
        if column_type(node, self.lookup) is not None:
            return None
        owner = exp.column(node.table, table=node.db or None)
        owner.parent = node.parent
        return owner if isinstance(column_type(owner, self.lookup), ClrUdtType) else None

    def _property(self, node: exp.Column, owner: exp.Column) -> exp.Expr:
        sql_type = column_type(owner, self.lookup)
        assert isinstance(sql_type, ClrUdtType)
        name = node.name.upper()
        value = storage.computed(owner, sql_type)
        if sql_type.name != "hierarchyid" and name == "STSRID":
            return exp.func("dtaas_spatial_srid", value)
        axis = {"STX": "x", "LONG": "x", "STY": "y", "LAT": "y"}.get(name)
        if axis is not None and (name in ("LAT", "LONG")) == sql_type.geography:
            geography = exp.Boolean(this=sql_type.geography)
            return exp.func("dtaas_spatial_coordinate", value, geography, exp.Literal.string(axis))
        raise not_supported(f"The property {sql_type.name}::{node.name}")

    # -- conversions ------------------------------------------------------------------------------

    def _cast(self, node: exp.Cast | exp.Convert) -> exp.Expr:
        target_node = node.to if isinstance(node, exp.Cast) else node.this
        value = node.this if isinstance(node, exp.Cast) else node.expression
        style_node = node.args.get("style")
        style = (
            int(style_node.name)
            if isinstance(style_node, exp.Literal) and style_node.name.isdigit()
            else None
        )
        try:
            target = declared_type(target_node) if isinstance(target_node, exp.DataType) else None
        except UnsupportedType:
            target = None
        if target is not None and storage_form_of_cast(target, node):
            return _done(self.into(value, target))
        held = self.stored(value)
        if isinstance(held, RowversionType | BinaryType) and isinstance(target, IntType):
            # SQL Server reads the bytes as a big-endian integer: CONVERT(BIGINT, [rv]); DuckDB would not
            digits = exp.DPipe(this=exp.Literal.string("0x"), expression=exp.func("hex", value))
            number = exp.cast(digits, exp.DataType.build(storage_type(target)))
            empty = exp.EQ(this=exp.func("octet_length", value), expression=exp.Literal.number(0))
            return _done(exp.Case(ifs=[exp.If(this=empty, true=exp.Literal.number(0))], default=number))
        if storage.special(held) and not storage.special(target):
            assert held is not None
            if isinstance(target_node, exp.DataType) and target_node.is_type(*exp.DataType.TEXT_TYPES):
                text = storage.as_text(value, held, style)
                if text is not None:
                    return _done(text)
            if isinstance(held, ClrUdtType):  # to varbinary: the serialized bytes
                return _done(storage.computed(value, held))
            node.set("this" if isinstance(node, exp.Cast) else "expression", storage.computed(value, held))
        return node

    # -- comparisons --------------------------------------------------------------------------------

    def _comparison(self, node: exp.Binary) -> exp.Expr:
        left, right = node.this, node.expression
        left_type, right_type = self.stored(left), self.stored(right)
        if isinstance(left_type, XmlType) or isinstance(right_type, XmlType):
            raise SqlServerError(
                305, "The XML data type cannot be compared or sorted, except when using the IS NULL operator."
            )
        kind = (
            left_type if storage.special(left_type) else right_type if storage.special(right_type) else None
        )
        if kind is None:
            return node
        # both sides in the stored form of the column's type (a stored value of that type passes as is)
        return _done(type(node)(this=self.into(left, kind), expression=self.into(right, kind)))

    def _range(self, node: exp.Between | exp.In) -> exp.Expr:
        sql_type = self.stored(node.this)
        if not storage.special(sql_type):
            return node
        assert sql_type is not None
        query = node.args.get("query")
        if query is not None:  # x IN (SELECT ...): compare stored forms when the subquery yields them
            select = query.this if isinstance(query, exp.Subquery) else query
            items = select.expressions if isinstance(select, exp.Select) else []
            if len(items) != 1 or not storage.same_kind(self.stored(items[0].unalias()), sql_type):
                return node
            node.set("this", self.into(node.this, sql_type))
            return _done(node)
        for key in ("low", "high") if isinstance(node, exp.Between) else ():
            node.set(key, self.into(node.args[key], sql_type))
        if isinstance(node, exp.In):
            node.set("expressions", [self.into(value, sql_type) for value in node.expressions])
        node.set("this", self.into(node.this, sql_type))
        return _done(node)


def _done(node: exp.Expr) -> exp.Expr:
    """Mark a rewritten node so a second visit leaves it alone (rewrites are not idempotent)."""
    node.meta[_LOWERED] = True
    return node


def _dotted(node: exp.Expr) -> list[str]:
    if isinstance(node, exp.Dot):
        return [*_dotted(node.this), node.expression.name]
    if isinstance(node, exp.Column):
        return [part.name for part in node.parts]
    return [node.name]


def _keeps_stored(column: exp.Column) -> bool:
    """Whether a stored column stays a struct here: selected as is, sorted, grouped, MIN/MAX/COUNT, IS NULL,
    or assigned as is by INSERT/UPDATE."""
    parent = column.parent
    if handed_over(column) or isinstance(parent, _KEEPS_STORED):
        return True
    if isinstance(parent, exp.Window):
        return column in (parent.args.get("partition_by") or [])
    return isinstance(parent, exp.EQ) and isinstance(parent.parent, exp.Update)  # SET <column> = ...


def lower_special_types(
    statement: exp.Expr, lookup: Lookup, params: Mapping[str, Any] | None = None
) -> exp.Expr:
    """The statement with every use of a specially stored type rewritten (see the module docstring)."""
    rewriter = _Rewriter(lookup, params)
    statement = assign.lower_writes(statement, lookup, params)
    return rewriter.lower(statement)
