"""Whole-statement rewrites of T-SQL calls, before the node-by-node translation (``translate``):
``OBJECT_ID(...)`` as the catalog's macro, ``+`` of strings as concatenation, and the CDC and change
tracking functions as the catalog's macros of their names."""

from __future__ import annotations

from sqlglot import exp

from airflow_provider_dtaas.testing.sqlserver.catalog import CATALOG
from airflow_provider_dtaas.testing.sqlserver.errors import SqlServerError
from airflow_provider_dtaas.testing.sqlserver.options import split_name


def _object_id(name: exp.Expr, kind: exp.Expr | None = None) -> exp.Expr:
    """``OBJECT_ID`` of a literal name resolved part by part, unquoted as SQL Server does (``[a]]b]``
    is ``a]b``, a dot inside brackets belongs to the name); of any other expression, by the catalog.
    Tables and their constraints are objects; ``kind`` ('U', 'PK', 'D'...) narrows to one type."""
    kind = exp.null() if kind is None else kind
    if isinstance(name, exp.National) or (isinstance(name, exp.Literal) and name.is_string):
        *qualifiers, table = split_name(name.name) or [""]
        schema = qualifiers[-1] if qualifiers else "dbo"
        return exp.func(
            f"{CATALOG}.object_id_of", exp.Literal.string(schema), exp.Literal.string(table), kind
        )
    return exp.func(f"{CATALOG}.object_id", name, kind)


def object_ids(tree: exp.Expr) -> exp.Expr:
    """Every ``OBJECT_ID(...)`` as a call of the catalog's macro, before the other rewrites: its arguments
    (a CAST, an N'' literal) are then rewritten like any other expression."""
    for node in reversed(list(tree.find_all(exp.ObjectId))):
        node.replace(_object_id(node.this, node.args.get("expression")))
    return tree


def _operands(node: exp.Expr) -> list[exp.Expr]:
    if isinstance(node, exp.Add | exp.DPipe):
        return [*_operands(node.this), *_operands(node.expression)]
    return [node.this if isinstance(node, exp.Paren) else node]


def _is_text(node: exp.Expr) -> bool:
    if isinstance(node, exp.National) or (isinstance(node, exp.Literal) and node.is_string):
        return True
    return (
        isinstance(node, exp.Cast)
        and isinstance(node.to, exp.DataType)
        and node.to.is_type(*exp.DataType.TEXT_TYPES)
    )


def string_concatenations(tree: exp.Expr) -> exp.Expr:
    """``a + N'.' + b``: T-SQL's + of strings is concatenation (DuckDB's ||), known here when an operand is
    a string literal or a CAST to a character type and none is a number."""
    for node in reversed(list(tree.find_all(exp.Add))):
        operands = _operands(node)
        numbers = any(isinstance(o, exp.Literal) and not o.is_string for o in operands)
        if not numbers and any(_is_text(o) for o in operands):
            node.replace(exp.DPipe(this=node.this, expression=node.expression))
    return tree


_CHANGE_TRACKING_FUNCTIONS = {"CHANGE_TRACKING_CURRENT_VERSION": 0, "CHANGE_TRACKING_MIN_VALID_VERSION": 1}


def cdc_functions(tree: exp.Expr) -> exp.Expr:
    """``sys.fn_cdc_*(...)``, ``CHANGE_TRACKING_CURRENT_VERSION()`` and
    ``CHANGE_TRACKING_MIN_VALID_VERSION(object_id)`` call the catalog's macro of that name (innermost
    calls first)."""
    for node in reversed(list(tree.find_all(exp.Dot))):
        if (
            isinstance(node.this, exp.Identifier)
            and node.this.name.lower() == "sys"
            and isinstance(node.expression, exp.Anonymous)
            and str(node.expression.this).lower().startswith("fn_cdc_")
        ):
            call = node.expression
            node.replace(exp.func(f"{CATALOG}.{str(call.this).lower()}", *call.expressions))
    for call in reversed(list(tree.find_all(exp.Anonymous))):
        if str(call.this).upper() in _CHANGE_TRACKING_FUNCTIONS:
            if len(call.expressions) != _CHANGE_TRACKING_FUNCTIONS[str(call.this).upper()]:
                raise SqlServerError(
                    174,
                    f"The {str(call.this).lower()} function requires "
                    f"{_CHANGE_TRACKING_FUNCTIONS[str(call.this).upper()]} argument(s).",
                    severity=15,
                )
            call.replace(exp.func(f"{CATALOG}.{str(call.this).lower()}", *call.expressions))
    return tree
