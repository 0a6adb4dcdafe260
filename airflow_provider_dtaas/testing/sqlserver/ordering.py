"""SQL Server's order of uniqueidentifier values, applied to a T-SQL statement before translation.

SQL Server compares uniqueidentifiers by byte groups, most significant first: the last 6 bytes, then
bytes 8-9, then 7, 6, 5, 4, 3, 2, 1, 0 of the value as written (``aabbccdd-eeff-gghh-iijj-kkllmmnnoopp``
sorts by ``kkllmmnnoopp``, ``iijj``, ``hh gg``, ``ff ee``, ``dd cc bb aa``), the order of .NET's SqlGuid.
DuckDB compares UUIDs as written. So every ORDER BY item (also inside OVER) and every <, <=, >, >=
and BETWEEN whose operand is a uniqueidentifier column is rewritten to compare
``__dtaas.guid_order(x)``, a text key in SQL Server's order. Equality needs no rewrite.
"""

from __future__ import annotations

from sqlglot import exp

from airflow_provider_dtaas.testing.sqlserver.catalog import TableDefinition
from airflow_provider_dtaas.testing.sqlserver.resolve import Lookup, column_declaration
from airflow_provider_dtaas.testing.sqlserver.sysviews import CATALOG
from airflow_provider_dtaas.testing.sqlserver.types import GuidType

_RANGES = (exp.GT, exp.GTE, exp.LT, exp.LTE)


def _memoized(lookup: Lookup) -> Lookup:
    known: dict[tuple[str, str], TableDefinition | None] = {}

    def find(schema: str, name: str) -> TableDefinition | None:
        key = (schema.lower(), name.lower())
        if key not in known:
            known[key] = lookup(schema, name)
        return known[key]

    return find


def sort_key(node: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=f"{CATALOG}.guid_order", expressions=[node])


def order_guids(statement: exp.Expr, lookup: Lookup) -> exp.Expr:
    """Rewrite ``statement`` in place so uniqueidentifier columns order as in SQL Server; returns it."""
    if not statement.find(exp.Ordered, *_RANGES, exp.Between):
        return statement
    find = _memoized(lookup)

    def is_guid(node: exp.Expr | None) -> bool:
        if not isinstance(node, exp.Column) or isinstance(node.this, exp.Star):
            return False
        declared = column_declaration(node, find)
        return declared is not None and isinstance(declared.sql_type, GuidType)

    ordered = [o for o in statement.find_all(exp.Ordered) if is_guid(o.this)]
    ranges = [
        r
        for r in statement.find_all(*_RANGES, exp.Between)
        if any(is_guid(r.args.get(k)) for k in ("this", "expression", "low", "high"))
    ]
    for item in ordered:
        item.set("this", sort_key(item.this))
    for comparison in ranges:
        for key in ("this", "expression", "low", "high"):
            operand = comparison.args.get(key)
            if operand is not None:
                comparison.set(key, sort_key(operand))
    return statement
