"""The sample database ``dtaas_sample``: tables created through the engine's T-SQL path (so the
declared catalog is exercised), rows bulk-generated inside DuckDB from ``range()`` — deterministic,
no randomness, and fast (120,000 orders in well under a second).

Tables: dbo.customers (1,000), dbo.products (200), dbo.orders (120,000), sales.regions (5)."""

from __future__ import annotations

import logging

from airflow_provider_dtaas.testing.sqlserver.database import Database
from airflow_provider_dtaas.testing.sqlserver.engine import Session

log = logging.getLogger(__name__)

CUSTOMERS = 1_000
PRODUCTS = 200
ORDERS = 120_000

DDL = """
CREATE SCHEMA sales;
CREATE TABLE dbo.customers (
    customer_id int NOT NULL PRIMARY KEY,
    full_name nvarchar(200) NOT NULL,
    email varchar(320) NULL,
    is_active bit NOT NULL,
    external_ref uniqueidentifier NOT NULL,
    created_at datetime2(7) NOT NULL,
    credit_limit decimal(18,2) NULL
);
CREATE TABLE dbo.products (
    product_id int NOT NULL PRIMARY KEY,
    sku varchar(40) NOT NULL,
    name nvarchar(200) NOT NULL,
    unit_price decimal(18,2) NOT NULL,
    weight_kg float NULL,
    discontinued bit NOT NULL
);
CREATE TABLE dbo.orders (
    order_id bigint NOT NULL,
    customer_id int NOT NULL REFERENCES dbo.customers (customer_id),
    product_id int NOT NULL REFERENCES dbo.products (product_id),
    quantity smallint NOT NULL,
    amount decimal(18,2) NOT NULL,
    status nvarchar(20) NOT NULL,
    ordered_at datetime2(7) NOT NULL,
    shipped_on date NULL,
    note nvarchar(max) NULL,
    order_guid uniqueidentifier NOT NULL,
    CONSTRAINT PK_orders PRIMARY KEY (order_id)
);
CREATE TABLE sales.regions (
    region_id tinyint NOT NULL PRIMARY KEY,
    code char(4) NOT NULL,
    name nvarchar(100) NOT NULL,
    tax_rate decimal(5,4) NOT NULL,
    opens_at time(3) NULL,
    updated_at datetime NULL,
    budget money NULL,
    score real NULL,
    logo_hash varbinary(32) NULL,
    last_audit datetimeoffset(7) NULL
);
INSERT INTO sales.regions VALUES
    (1, 'EMEA', N'Europe, Middle East & Africa', 0.2000, '08:30:00.125', '2024-03-01 12:00:00.003',
     1250000.5000, 4.5, 0x00FF10AB, '2024-05-06 07:08:09.1234567 +02:00'),
    (2, 'NA', N'North America', 0.0725, '09:00:00', '2024-03-02 13:14:15.997', 2500000.0000, 3.25,
     NULL, NULL),
    (3, 'LAT', N'América Latina', 0.1600, NULL, NULL, NULL, NULL, 0xCAFE, NULL),
    (4, 'APJ', N'アジア太平洋', 0.1000, '23:59:59.999', '2023-12-31 23:59:59.997', 99.9900, -1.5,
     0xDEADBEEF, NULL),
    (5, 'ANZ', N'Aotearoa 🥝', 0.1500, '00:00:00', '2024-01-01 00:00:00', 0.0001, 0, NULL, NULL)
"""

_UUID = (
    "CAST(regexp_replace(md5({seed}), '^(.{{8}})(.{{4}})(.{{4}})(.{{4}})(.{{12}})$', "
    "'\\1-\\2-\\3-\\4-\\5') AS UUID)"
)

_CUSTOMER_NAMES = [
    "Zoë Müller", "Łukasz Żółć", "東京 花子", "Ολυμπία Παπαδοπούλου", "José Álvarez", "Ana-María O'Neil",
    "Søren Kierkegård", "Çağla Yılmaz", "Nguyễn Văn An", "Zoë Łukasz 東京 😀", "Smith, John", "Ирина Петрова",  # noqa: RUF001
]  # fmt: skip
# Non-ASCII on purpose: the double must carry it unchanged.
_PRODUCT_NAMES = ["Café crème", "Schraube M3 – Edelstahl", "東京タワー模型", "Widget", "Gadget ™", "Tee 🍵"]  # noqa: RUF001
_NOTES = ["Bitte vor 10 Uhr liefern – danke!", "Livraison rapide 🚚", "請小心輕放", "Leave at the door"]  # noqa: RUF001


def _list(values: list[str]) -> str:
    return "[" + ", ".join("'" + value.replace("'", "''") + "'" for value in values) + "]"


BULK = [
    f"""INSERT INTO dbo.customers
    SELECT i, {_list(_CUSTOMER_NAMES)}[1 + i % {len(_CUSTOMER_NAMES)}] || ' #' || i,
           CASE WHEN i % 10 = 0 THEN NULL ELSE 'customer' || i || '@example.com' END,
           i % 7 <> 0,
           {_UUID.format(seed="'customer-' || i")},
           __dtaas.datetime2_from_ns(
               1672531200000000000 + i * 86400000000000 // 3 + (i * 1234567 % 10000000) * 100),
           CASE WHEN i % 13 = 0 THEN NULL ELSE CAST(((i * 3719) % 5000000) * 0.01 AS DECIMAL(18,2)) END
    FROM range(1, {CUSTOMERS + 1}) t(i)""",
    f"""INSERT INTO dbo.products
    SELECT i, 'SKU-' || lpad(CAST(i AS VARCHAR), 5, '0'),
           {_list(_PRODUCT_NAMES)}[1 + i % {len(_PRODUCT_NAMES)}] || ' ' || i,
           CAST(((i * 7907) % 100000) * 0.01 + 0.99 AS DECIMAL(18,2)),
           CASE WHEN i % 9 = 0 THEN NULL ELSE i * 0.125 END,
           i % 17 = 0
    FROM range(1, {PRODUCTS + 1}) t(i)""",
    f"""INSERT INTO dbo.orders
    SELECT i, 1 + (i * 7919) % {CUSTOMERS}, 1 + (i * 104729) % {PRODUCTS}, 1 + i % 12,
           CAST(((i * 2654435761) % 10000000) * 0.01 AS DECIMAL(18,2)),
           ['new', 'paid', 'shipped', 'cancelled', 'returned'][1 + i % 5],
           __dtaas.datetime2_from_ns(1704067200000000000 + i * 37000000000 + (i * 7654321 % 10000000) * 100),
           CASE WHEN i % 5 IN (0, 3) THEN NULL
                ELSE CAST(make_timestamp(1704067200000000 + i * 37000000 + (i % 7) * 86400000000) AS DATE)
           END,
           CASE WHEN i % 97 = 0 THEN {_list(_NOTES)}[1 + (i // 97) % {len(_NOTES)}] END,
           {_UUID.format(seed="'order-' || i")}
    FROM range(1, {ORDERS + 1}) t(i)""",
]


# As deploy/mssql/seed.sql does on a real SQL Server: CDC enabled once the rows are in, one capture
# instance per table named <schema>_<table>, no gating role, net changes.
CDC = ["EXEC sys.sp_cdc_enable_db"] + [
    f"EXEC sys.sp_cdc_enable_table @source_schema = N'{schema}', @source_name = N'{table}', "
    f"@capture_instance = N'{schema}_{table}', @role_name = NULL, @supports_net_changes = 1"
    for schema, table in (("dbo", "customers"), ("dbo", "products"), ("dbo", "orders"), ("sales", "regions"))
]


def seed(database: Database) -> None:
    """Create and fill the sample tables (the database must not have them yet), then enable CDC."""
    session = Session(database, login="seed", spid=1)
    try:
        session.begin()
        for statement in session.split(DDL):
            session.run(statement)
        for sql in BULK:
            session.run_duckdb(sql)
        session.commit()
        for statement in CDC:
            session.run(statement)
    finally:
        session.close()
    log.info("seeded sample database %s", database.name)


def seed_if_empty(database: Database) -> bool:
    """Seed unless dbo.customers already exists; True when it seeded."""
    con = database.connect()
    try:
        found = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'customers'").fetchone()
    finally:
        con.close()
    if found != (0,):
        return False
    seed(database)
    return True
