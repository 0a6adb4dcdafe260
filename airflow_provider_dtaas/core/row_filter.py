"""Row filters from specs: one boolean expression, checked and re-rendered by sqlglot.

A filter is the one piece of SQL a spec may carry. It is parsed in the source's dialect (T-SQL for
SQL Server, PostgreSQL's for PostgreSQL) and accepted only when it is a single boolean expression:
no statement separators, no comments, no subqueries, no assignments. The text put into the
extraction query is sqlglot's rendering of the parsed tree, never the spec's raw string.
"""

from __future__ import annotations

from typing import Literal

import sqlglot
from sqlglot import TokenType, exp
from sqlglot.errors import ParseError, TokenError

_BOOLEAN = (
    exp.Predicate,
    exp.Connector,
    exp.Not,
    exp.Boolean,
    exp.Paren,
    exp.Between,
    exp.In,
    exp.Is,
    exp.Like,
    exp.ILike,
    exp.Exists,
)
_FORBIDDEN = (
    exp.Subquery,
    exp.Select,
    exp.Query,
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Create,
    exp.Drop,
    exp.Command,
    exp.Exists,
)


class RowFilterError(ValueError):
    """A row filter that is not one boolean expression."""


RowFilterDialect = Literal["tsql", "postgres"]  # sqlglot's names
_DIALECT_NAMES: dict[str, str] = {"tsql": "T-SQL", "postgres": "PostgreSQL"}


def render_row_filter(text: str, *, dialect: RowFilterDialect = "tsql") -> str:
    """Validate a spec's row filter and return the SQL to put after WHERE, in sqlglot's ``dialect``."""
    if not text.strip():
        raise RowFilterError("the row filter is empty")
    try:
        tokens = sqlglot.tokenize(text, read=dialect)
        if any(t.token_type == TokenType.SEMICOLON or t.comments for t in tokens):
            raise RowFilterError("a row filter may not contain comments or ';' (one boolean expression only)")
        statements = sqlglot.parse(f"SELECT 1 WHERE {text}", read=dialect)
    except (ParseError, TokenError) as err:
        first = err.errors[0]["description"] if isinstance(err, ParseError) and err.errors else str(err)
        raise RowFilterError(f"not valid {_DIALECT_NAMES[dialect]}: {first}") from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Select):
        raise RowFilterError("must be one boolean expression")
    where = statements[0].args.get("where")
    if where is None or statements[0].args.get("from_") or statements[0].args.get("from"):
        raise RowFilterError("must be one boolean expression")
    condition = where.this
    if any(isinstance(node, _FORBIDDEN) for node in condition.walk()):
        raise RowFilterError("subqueries and statements are not allowed in a row filter")
    if not isinstance(condition, _BOOLEAN):
        raise RowFilterError("must be a boolean expression, e.g. order_date >= '2024-01-01'")
    return str(condition.sql(dialect=dialect))


def transpile_row_filter(tsql: str, dialect: RowFilterDialect) -> str:
    """A filter the spec loader rendered as T-SQL, checked again and rendered in the source's dialect:
    a table plan may come from elsewhere than the spec loader (a DAG of one's own, an XCom)."""
    checked = render_row_filter(tsql, dialect="tsql")
    if dialect == "tsql":
        return checked
    condition = sqlglot.parse_one(f"SELECT 1 WHERE {checked}", read="tsql").args["where"].this
    return render_row_filter(str(condition.sql(dialect=dialect)), dialect=dialect)
