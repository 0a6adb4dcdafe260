"""SQL Server errors with their real numbers, and the mapping from DuckDB's exceptions to them."""

from __future__ import annotations

import re

import duckdb


class SqlServerError(Exception):
    """An error as SQL Server reports it: number, severity (class), state and message text."""

    def __init__(self, number: int, message: str, *, severity: int = 16, state: int = 1) -> None:
        super().__init__(message)
        self.number = number
        self.message = message
        self.severity = severity
        self.state = state

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
_COLUMN_NOT_IN_TABLE = re.compile(r'does not have a column with name "([^"]+)"')
_TABLE_NOT_FOUND = re.compile(r"Table with name ([^ ]+) does not exist")
_SYNTAX_NEAR = re.compile(r'syntax error at or near "([^"]*)"')
_DUPLICATE_KEY = re.compile(r'Duplicate key "(.*)" violates (primary key|unique) constraint')
_NOT_NULL = re.compile(r"NOT NULL constraint failed: ([^.]+)\.(\S+)")
_REFUSED = re.compile(r"\[SQL Server error (\d+)\] (.*)")


def from_duckdb(
    error: duckdb.Error, *, table: str | None = None, constraint: str | None = None
) -> SqlServerError:
    """Translate a DuckDB error; ``table``/``constraint`` name the statement's target for messages."""
    text = str(error)
    if match := _REFUSED.search(text):
        return SqlServerError(int(match.group(1)), match.group(2))
    if isinstance(error, duckdb.TransactionException) and "aborted" in text:
        return doomed_transaction()
    if match := _COLUMN_NOT_FOUND.search(text) or _COLUMN_NOT_IN_TABLE.search(text):
        return invalid_column(match.group(1))
    if match := _TABLE_NOT_FOUND.search(text):
        return invalid_object(match.group(1))
    if match := _SYNTAX_NEAR.search(text):
        return syntax_error(match.group(1))
    if match := _DUPLICATE_KEY.search(text):
        values = ", ".join(part.split(": ", 1)[-1] for part in match.group(1).split(", "))
        if match.group(2) == "primary key":
            return SqlServerError(
                2627,
                f"Violation of PRIMARY KEY constraint '{constraint or 'PK'}'. Cannot insert duplicate key "
                f"in object '{table or '?'}'. The duplicate key value is ({values}).",
                severity=14,
            )
        return SqlServerError(
            2627,
            f"Violation of UNIQUE KEY constraint '{constraint or 'UQ'}'. Cannot insert duplicate key in "
            f"object '{table or '?'}'. The duplicate key value is ({values}).",
            severity=14,
        )
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
