"""Where a Snowflake destination test writes: a connection, a database and a schema of its own.

The ``snowflake_place`` fixture (tests/integration/conftest.py) gives one per test, on fakesnow and,
when ``DTAAS_TEST_SNOWFLAKE_CONN`` and ``DTAAS_TEST_SNOWFLAKE_DATABASE`` are set, on a real account;
the schema has a fresh name, so parallel runs on one account never meet, and is dropped afterwards.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_dtaas.core.identifiers import quote_snowflake_path
from airflow_provider_dtaas.core.plan import SnowflakeTarget

if TYPE_CHECKING:
    from airflow_provider_dtaas.hooks.snowflake import DtaasSnowflakeHook

REAL_SNOWFLAKE_ENV = "DTAAS_TEST_SNOWFLAKE_CONN"  # an Airflow connection URI or JSON
REAL_DATABASE_ENV = "DTAAS_TEST_SNOWFLAKE_DATABASE"  # a database the connection may create schemas in
STAND_IN_DATABASE = "ITDB"  # the database the tests create on fakesnow


def fresh_schema() -> str:
    return f"DTAAS_IT_{uuid.uuid4().hex[:12].upper()}"


@dataclass(frozen=True)
class SnowflakePlace:
    conn_id: str
    database: str
    schema: str  # fresh per test; created by the code under test (or the test), dropped afterwards
    stand_in: bool  # fakesnow rather than a real account

    def path(self, table: str) -> str:
        """The table's quoted three-part name, for the test's own SQL."""
        return quote_snowflake_path(self.database, self.schema, table)

    def information_schema(self, view: str) -> str:
        """``"<database>"."INFORMATION_SCHEMA"."<view>"``: filter it on ``table_schema = self.schema``."""
        return quote_snowflake_path(self.database, "INFORMATION_SCHEMA", view)

    def target(self, table: str, **settings: Any) -> SnowflakeTarget:
        return SnowflakeTarget(
            conn_id=self.conn_id,
            database=self.database,
            schema=self.schema,
            table=table,
            stage="DTAAS_STAGE",
            **settings,
        )

    def hook(self) -> DtaasSnowflakeHook:
        from airflow_provider_dtaas.hooks.snowflake import DtaasSnowflakeHook

        return DtaasSnowflakeHook(snowflake_conn_id=self.conn_id)

    def records(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.hook().session() as session:
            return session.execute(sql, parameters)

    def require_stand_in(self, reason: str) -> None:
        """Skip on a real account: the test checks something only the stand-in shows."""
        if not self.stand_in:
            pytest.skip(f"checks the stand-in itself: {reason}")

    def drop(self) -> None:
        with self.hook().session() as session:
            session.execute(
                f"DROP SCHEMA IF EXISTS {quote_snowflake_path(self.database, self.schema)} CASCADE"
            )
