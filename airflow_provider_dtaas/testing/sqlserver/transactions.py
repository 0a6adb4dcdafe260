"""One session's transactions over its DuckDB connection: BEGIN/COMMIT/ROLLBACK nesting, statement
rollback, and the isolation level set by ``SET TRANSACTION ISOLATION LEVEL``.

READ COMMITTED (the default) and READ UNCOMMITTED: inside BEGIN TRAN the DuckDB transaction opens at
the first write, so reads before it see other sessions' commits. SNAPSHOT, REPEATABLE READ and
SERIALIZABLE: it opens at the first read, so every later read of the transaction sees the database as
of that moment (DuckDB's MVCC snapshot) — SQL Server's row versioning for SNAPSHOT; for the two
locking levels the double cannot block writers and gives the same consistent view instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import duckdb

from airflow_provider_dtaas.testing.sqlserver.database import Database
from airflow_provider_dtaas.testing.sqlserver.errors import SqlServerError, doomed_transaction
from airflow_provider_dtaas.testing.sqlserver.outcomes import StatementDone, Transaction

T = TypeVar("T")

ISOLATION_LEVELS = ("READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ", "SNAPSHOT", "SERIALIZABLE")
_CONSISTENT_READS = ("REPEATABLE READ", "SNAPSHOT", "SERIALIZABLE")


class Transactions:
    """Transaction nesting (@@TRANCOUNT), the open DuckDB transaction and the isolation level."""

    def __init__(self, con: duckdb.DuckDBPyConnection, database: Database) -> None:
        self._con = con
        self._database = database
        self.trancount = 0
        self.isolation = "READ COMMITTED"
        self.descriptor = 0
        self._open = False  # a DuckDB transaction is open
        self._writes = 0  # successful writes in the open DuckDB transaction
        self.before_commit: Callable[[], None] = lambda: None  # runs inside the transaction, last
        self.after_end: Callable[[], None] = lambda: None  # runs after COMMIT or ROLLBACK

    def close(self) -> None:
        if self._open:
            self._con.execute("ROLLBACK")

    def before_read(self) -> None:
        """Open the DuckDB transaction at the first read of a transaction that must read consistently."""
        if self.trancount and not self._open and self.isolation in _CONSISTENT_READS:
            self._con.execute("BEGIN TRANSACTION")
            self._open, self._writes = True, 0

    def write(self, work: Callable[[], T], *, atomic: bool = False) -> T:
        """Run a writing statement. When the first write of a transaction fails it is rolled back alone
        (SQL Server's statement rollback); a later failure dooms the transaction (error 3930 until
        ROLLBACK), as DuckDB cannot roll back one statement. ``atomic`` runs ``work`` in a transaction of
        its own outside BEGIN TRAN (DDL with its catalog rows)."""
        if self.trancount == 0 and not atomic:
            return work()
        own = self.trancount == 0
        if not self._open:
            self._con.execute("BEGIN TRANSACTION")
            self._open, self._writes = True, 0
        try:
            result = work()
        except Exception:
            if own or self._writes == 0:
                self._con.execute("ROLLBACK")
                self._open = False
                self.after_end()
            raise
        if own:
            self._con.execute("COMMIT")
            self._open = False
        else:
            self._writes += 1
        return result

    def begin(self) -> StatementDone:
        self.trancount += 1
        if self.trancount > 1:
            return StatementDone()
        self.descriptor = self._database.next_descriptor()
        return StatementDone(events=[Transaction("begin", self.descriptor)])

    def commit(self) -> StatementDone:
        if self.trancount == 0:
            raise SqlServerError(
                3902, "The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION."
            )
        self.trancount -= 1
        if self.trancount > 0:
            return StatementDone()
        if self._open:
            self._open = False
            try:
                self.before_commit()
                self._con.execute("COMMIT")
            except duckdb.Error as error:
                self._con.execute("ROLLBACK")
                raise doomed_transaction() from error
            finally:
                self.after_end()
        return StatementDone(events=[Transaction("commit", self.descriptor)])

    def rollback(self) -> StatementDone:
        if self.trancount == 0:
            raise SqlServerError(
                3903, "The ROLLBACK TRANSACTION request has no corresponding BEGIN TRANSACTION."
            )
        self.trancount = 0
        if self._open:
            self._open = False
            self._con.execute("ROLLBACK")
        self.after_end()
        return StatementDone(events=[Transaction("rollback", self.descriptor)])
