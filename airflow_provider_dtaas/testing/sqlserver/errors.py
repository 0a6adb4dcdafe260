"""SQL Server errors with their real numbers, and the mapping from DuckDB's exceptions to them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from airflow_provider_dtaas.testing.sqlserver.catalog import IndexDefinition


class SqlServerError(Exception):
    """An error as SQL Server reports it: number, severity (class), state and message text."""

    def __init__(
        self,
        number: int,
        message: str,
        *,
        severity: int = 16,
        state: int = 1,
        preceding: tuple[SqlServerError, ...] = (),
    ) -> None:
        super().__init__(message)
        self.number = number
        self.message = message
        self.severity = severity
        self.state = state
        self.preceding = preceding  # messages SQL Server sends before this one (5074 before 4922)

    def __repr__(self) -> str:
        return f"SqlServerError({self.number}, {self.message!r})"


class ValueRefused(ValueError):
    """Raised inside a DuckDB function (see ``functions``) to answer with a SQL Server error number."""

    def __init__(self, number: int, message: str) -> None:
        super().__init__(f"[SQL Server error {number}] {message}")
        self.sql_server_number = number


def sql_error(number: int, message: str) -> ValueRefused:
    if number == 6522:
        message = f"A .NET Framework error occurred during execution of a CLR type's method: {message}"
    return ValueRefused(number, message)


def invalid_object(name: str) -> SqlServerError:
    return SqlServerError(208, f"Invalid object name '{name}'.")


def invalid_column(name: str) -> SqlServerError:
    return SqlServerError(207, f"Invalid column name '{name}'.")


def syntax_error(near: str) -> SqlServerError:
    return SqlServerError(102, f"Incorrect syntax near '{near}'.", state=1)


def unknown_function(name: str) -> SqlServerError:
    return SqlServerError(195, f"'{name}' is not a recognized built-in function name.", severity=15, state=10)


def computed_column_modified(name: str) -> SqlServerError:
    return SqlServerError(
        271,
        f'The column "{name}" cannot be modified because it is either a computed column or is the result '
        "of a UNION operator.",
    )


def not_supported(what: str) -> SqlServerError:
    """Something valid in T-SQL that the double does not emulate: fail loudly, never answer wrongly."""
    return SqlServerError(40517, f"{what} is not supported by the DTaaS SQL Server double.")


def variant_for_db_library(column: str) -> SqlServerError:
    """SQL Server sends sql_variant as is; FreeTDS' DB-Library hands pymssql the base value's bytes without
    the base type (and converts them with the previous row's character set), so the double refuses."""
    return SqlServerError(
        40517,
        f"Sending the sql_variant column '{column}' to a DB-Library client (FreeTDS, pymssql) is not "
        "supported by the DTaaS SQL Server double: the client cannot decode it. Select "
        f"CONVERT(NVARCHAR(4000), [{column}]) instead.",
    )


def object_exists(name: str) -> SqlServerError:
    return SqlServerError(2714, f"There is already an object named '{name}' in the database.")


def cannot_drop(name: str) -> SqlServerError:
    return SqlServerError(
        3701, f"Cannot drop the table '{name}', because it does not exist or you do not have permission."
    )


def doomed_transaction() -> SqlServerError:
    return SqlServerError(
        3930,
        "The current transaction cannot be committed and cannot support operations that write to the "
        "log file. Roll back the transaction.",
    )


_COLUMN_NOT_FOUND = re.compile(r'Referenced column "([^"]+)" not found')
_COLUMN_NOT_IN_TABLE = re.compile(r'does not have a column (?:with name|named) "([^"]+)"')
_TABLE_NOT_FOUND = re.compile(r"Table with name ([^ ]+) does not exist")
_SYNTAX_NEAR = re.compile(r'syntax error at or near "([^"]*)"')
_DUPLICATE_KEY = re.compile(r'Duplicate key "(.*)" violates (primary key|unique) constraint')
_DUPLICATE_IN_STATEMENT = re.compile(r'PRIMARY KEY or UNIQUE constraint violation: duplicate key "(.*)"')
_KEY_COLUMN = re.compile(r'^(?:\w+\()*"?([^()"]+)"?\)*$')  # lower("name") -> name, of folded keys
_UNKNOWN_FUNCTION = re.compile(r"Scalar Function with name ([^ ]+) does not exist")
_UNKNOWN_TABLE_FUNCTION = re.compile(r"Table Function with name ([^ ]+) does not exist")
_NOT_NULL = re.compile(r"NOT NULL constraint failed: ([^.]+)\.(\S+)")
_REFUSED = re.compile(r"\[SQL Server error (\d+)\] (.*)")


def _violated(columns: list[str], keys: Sequence[IndexDefinition]) -> IndexDefinition | None:
    """The unique key a duplicate-key error is about: the one on exactly these columns, else the
    primary key (DuckDB names no columns when the duplicates meet inside one statement)."""
    wanted = [name.lower() for name in columns]
    for key in keys:
        if [name.lower() for name in key.column_names] == wanted:
            return key
    return next((key for key in keys if key.kind == "PRIMARY KEY"), keys[0] if len(keys) == 1 else None)


def duplicate_key(text: str, table: str | None, keys: Sequence[IndexDefinition]) -> SqlServerError | None:
    """2627 (PRIMARY KEY / UNIQUE constraint) or 2601 (unique index) from DuckDB's duplicate-key message."""
    if match := _DUPLICATE_KEY.search(text):
        pairs = [part.split(": ", 1) for part in match.group(1).split(", ")]
        columns, values = [_KEY_COLUMN.sub(r"\1", p[0]) for p in pairs], [p[-1] for p in pairs]
    elif match := _DUPLICATE_IN_STATEMENT.search(text):
        columns, values = [], [match.group(1)]
    else:
        return None
    key = _violated(columns, keys)
    shown = f"({', '.join(values)})"
    if key is not None and key.kind == "INDEX":
        return SqlServerError(
            2601,
            f"Cannot insert duplicate key row in object '{table or '?'}' with unique index '{key.name}'. "
            f"The duplicate key value is {shown}.",
            severity=14,
        )
    is_primary = key.kind == "PRIMARY KEY" if key is not None else "primary key" in text
    kind, default = ("PRIMARY KEY", "PK") if is_primary else ("UNIQUE KEY", "UQ")
    return SqlServerError(
        2627,
        f"Violation of {kind} constraint '{key.name if key else default}'. Cannot insert duplicate key in "
        f"object '{table or '?'}'. The duplicate key value is {shown}.",
        severity=14,
    )


def from_duckdb(
    error: duckdb.Error, *, table: str | None = None, keys: Sequence[IndexDefinition] = ()
) -> SqlServerError:
    """Translate a DuckDB error; ``table`` and its unique ``keys`` name the statement's target in messages."""
    text = str(error)
    if match := _REFUSED.search(text):
        return SqlServerError(int(match.group(1)), match.group(2))
    if isinstance(error, duckdb.TransactionException) and "aborted" in text:
        return doomed_transaction()
    if match := _COLUMN_NOT_FOUND.search(text) or _COLUMN_NOT_IN_TABLE.search(text):
        return invalid_column(match.group(1))
    if match := _TABLE_NOT_FOUND.search(text) or _UNKNOWN_TABLE_FUNCTION.search(text):
        return invalid_object(match.group(1))
    if match := _UNKNOWN_FUNCTION.search(text):
        return unknown_function(match.group(1))
    if match := _SYNTAX_NEAR.search(text):
        return syntax_error(match.group(1))
    if duplicate := duplicate_key(text, table, keys):
        return duplicate
    if match := _NOT_NULL.search(text):
        return SqlServerError(
            515,
            f"Cannot insert the value NULL into column '{match.group(2)}', "
            f"table '{table or match.group(1)}'; column does not allow nulls. INSERT fails.",
        )
    if isinstance(error, duckdb.ConstraintException) and "CHECK constraint" in text:
        return SqlServerError(2628, f"String or binary data would be truncated in table '{table or '?'}'.")
    if isinstance(error, duckdb.ConversionException | duckdb.InvalidInputException):
        return SqlServerError(245, f"Conversion failed: {_first_line(text)}")
    if isinstance(error, duckdb.OutOfRangeException):
        return SqlServerError(8115, f"Arithmetic overflow error: {_first_line(text)}")
    if isinstance(error, duckdb.ParserException):
        return syntax_error(_first_line(text))
    return SqlServerError(50000, f"DTaaS SQL Server double could not run the statement: {_first_line(text)}")


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else text
