-- The sample database dtaas_sample on a real SQL Server 2022, with Change Data Capture, for the
-- docker-compose stack. It is the database our SQL Server double serves
-- (airflow_provider_dtaas/testing/sqlserver/sample.py): same schemas, tables, columns, types, keys
-- and row counts, the rows computed by the same formulas. tests/unit/test_mssql_seed.py keeps the
-- two from drifting apart.
--
-- Run by the mssql-seed service in docker-compose.yml, as sa:
--   sqlcmd -C -b -f 65001 -S mssql -U sa -i seed.sql
-- with the scripting variable DTAAS_READER_PASSWORD (from the environment, so it never appears on a
-- command line): the password of the login DTaaS reads with. It must meet SQL Server's password
-- policy and must not contain a single quote.
--
-- Idempotent: every object is created only when missing and every table is filled only when empty,
-- so a re-run (docker compose up again) changes nothing except the reader's password, which follows
-- the variable.
--
-- Known differences from the double (the double's, not this script's):
-- * char(4) values come back blank-padded here ('NA  '); the double returns them unpadded.
-- * datetimeoffset keeps its offset here (+02:00); the double returns the same instant in UTC.

SET NOCOUNT ON;
SET DATEFORMAT ymd;  -- the datetime literals below are year-month-day whatever the login's language
GO

IF DB_ID(N'dtaas_sample') IS NULL
BEGIN
    CREATE DATABASE dtaas_sample;
END
GO

-- GENERATE_SERIES below needs compatibility level 160 (SQL Server 2022).
ALTER DATABASE dtaas_sample SET COMPATIBILITY_LEVEL = 160;
GO

-- Lets a reader ask for SNAPSHOT isolation: a full load that sees one consistent state of a table
-- without blocking the writers (DTaaS does not request it yet; the CDC work will).
ALTER DATABASE dtaas_sample SET ALLOW_SNAPSHOT_ISOLATION ON;
GO

USE dtaas_sample;
GO

-- CREATE SCHEMA must be alone in its batch, hence the dynamic SQL behind the guard.
IF SCHEMA_ID(N'sales') IS NULL
BEGIN
    EXEC sys.sp_executesql N'CREATE SCHEMA sales';
END
GO

-- Tables: the columns, types and keys of the double's sample.DDL. The keys are written as named
-- table constraints: the primary keys carry the names the double reports in
-- INFORMATION_SCHEMA.TABLE_CONSTRAINTS, the foreign keys get names instead of generated ones.

IF OBJECT_ID(N'dbo.customers', N'U') IS NULL
BEGIN
    CREATE TABLE dbo.customers (
        customer_id int NOT NULL,
        full_name nvarchar(200) NOT NULL,
        email varchar(320) NULL,
        is_active bit NOT NULL,
        external_ref uniqueidentifier NOT NULL,
        created_at datetime2(7) NOT NULL,
        credit_limit decimal(18,2) NULL,
        CONSTRAINT PK_customers PRIMARY KEY (customer_id)
    );
END
GO

IF OBJECT_ID(N'dbo.products', N'U') IS NULL
BEGIN
    CREATE TABLE dbo.products (
        product_id int NOT NULL,
        sku varchar(40) NOT NULL,
        name nvarchar(200) NOT NULL,
        unit_price decimal(18,2) NOT NULL,
        weight_kg float NULL,
        discontinued bit NOT NULL,
        CONSTRAINT PK_products PRIMARY KEY (product_id)
    );
END
GO

IF OBJECT_ID(N'dbo.orders', N'U') IS NULL
BEGIN
    CREATE TABLE dbo.orders (
        order_id bigint NOT NULL,
        customer_id int NOT NULL,
        product_id int NOT NULL,
        quantity smallint NOT NULL,
        amount decimal(18,2) NOT NULL,
        status nvarchar(20) NOT NULL,
        ordered_at datetime2(7) NOT NULL,
        shipped_on date NULL,
        note nvarchar(max) NULL,
        order_guid uniqueidentifier NOT NULL,
        CONSTRAINT PK_orders PRIMARY KEY (order_id),
        CONSTRAINT FK_orders_customers FOREIGN KEY (customer_id) REFERENCES dbo.customers (customer_id),
        CONSTRAINT FK_orders_products FOREIGN KEY (product_id) REFERENCES dbo.products (product_id)
    );
END
GO

IF OBJECT_ID(N'sales.regions', N'U') IS NULL
BEGIN
    CREATE TABLE sales.regions (
        region_id tinyint NOT NULL,
        code char(4) NOT NULL,
        name nvarchar(100) NOT NULL,
        tax_rate decimal(5,4) NOT NULL,
        opens_at time(3) NULL,
        updated_at datetime NULL,
        budget money NULL,
        score real NULL,
        logo_hash varbinary(32) NULL,
        last_audit datetimeoffset(7) NULL,
        CONSTRAINT PK_regions PRIMARY KEY (region_id)
    );
END
GO

-- Rows: one set-based INSERT per table over GENERATE_SERIES, each column computed by the formula
-- sample.py gives DuckDB (there i is range()'s value; here it is GENERATE_SERIES's value, bigint so
-- that no product overflows). The translations:
-- * list[1 + i % n]                  -> CHOOSE(1 + value % n, ...)
-- * a || b                           -> CONCAT(a, b)
-- * md5(text) shaped as a UUID       -> HASHBYTES('MD5', text) as 32 hex digits, dashes put back by
--                                       STUFF: the same uniqueidentifier value
-- * make_timestamp_ns(epoch ns)      -> DATEADD from DATETIME2FROMPARTS: 2023-01-01 + i * 8 hours
--                                       (86400 s // 3) and 2024-01-01 + i * 37 s, plus the same
--                                       100 ns ticks
-- * lpad(i, 5, '0')                  -> RIGHT(CONCAT('00000', value), 5)
-- * a boolean expression for a bit   -> CASE ... THEN 1 ELSE 0 END

IF NOT EXISTS (SELECT 1 FROM dbo.customers)
BEGIN
    INSERT INTO dbo.customers (
        customer_id, full_name, email, is_active, external_ref, created_at, credit_limit
    )
    SELECT
        value,
        CONCAT(
            CHOOSE(
                1 + value % 12,
                N'Zoë Müller',
                N'Łukasz Żółć',
                N'東京 花子',
                N'Ολυμπία Παπαδοπούλου',
                N'José Álvarez',
                N'Ana-María O''Neil',
                N'Søren Kierkegård',
                N'Çağla Yılmaz',
                N'Nguyễn Văn An',
                N'Zoë Łukasz 東京 😀',
                N'Smith, John',
                N'Ирина Петрова'
            ),
            N' #',
            value
        ),
        CASE WHEN value % 10 = 0 THEN NULL ELSE CONCAT('customer', value, '@example.com') END,
        CASE WHEN value % 7 <> 0 THEN 1 ELSE 0 END,
        CAST(
            STUFF(STUFF(STUFF(STUFF(
                CONVERT(char(32), HASHBYTES('MD5', CONCAT('customer-', value)), 2),
                21, 0, '-'), 17, 0, '-'), 13, 0, '-'), 9, 0, '-')
            AS uniqueidentifier
        ),
        DATEADD(
            NANOSECOND,
            CAST((value * 1234567 % 10000000) * 100 AS int),
            DATEADD(HOUR, CAST(value * 8 AS int), DATETIME2FROMPARTS(2023, 1, 1, 0, 0, 0, 0, 7))
        ),
        CASE WHEN value % 13 = 0 THEN NULL ELSE CAST(((value * 3719) % 5000000) * 0.01 AS decimal(18,2)) END
    FROM GENERATE_SERIES(CAST(1 AS bigint), CAST(1000 AS bigint));
END
GO

IF NOT EXISTS (SELECT 1 FROM dbo.products)
BEGIN
    INSERT INTO dbo.products (product_id, sku, name, unit_price, weight_kg, discontinued)
    SELECT
        value,
        CONCAT('SKU-', RIGHT(CONCAT('00000', value), 5)),
        CONCAT(
            CHOOSE(
                1 + value % 6,
                N'Café crème',
                N'Schraube M3 – Edelstahl',
                N'東京タワー模型',
                N'Widget',
                N'Gadget ™',
                N'Tee 🍵'
            ),
            N' ',
            value
        ),
        CAST(((value * 7907) % 100000) * 0.01 + 0.99 AS decimal(18,2)),
        CASE WHEN value % 9 = 0 THEN NULL ELSE value * 0.125 END,
        CASE WHEN value % 17 = 0 THEN 1 ELSE 0 END
    FROM GENERATE_SERIES(CAST(1 AS bigint), CAST(200 AS bigint));
END
GO

IF NOT EXISTS (SELECT 1 FROM dbo.orders)
BEGIN
    INSERT INTO dbo.orders (
        order_id, customer_id, product_id, quantity, amount, status, ordered_at, shipped_on, note,
        order_guid
    )
    SELECT
        value,
        1 + (value * 7919) % 1000,
        1 + (value * 104729) % 200,
        1 + value % 12,
        CAST(((value * 2654435761) % 10000000) * 0.01 AS decimal(18,2)),
        CHOOSE(1 + value % 5, N'new', N'paid', N'shipped', N'cancelled', N'returned'),
        DATEADD(
            NANOSECOND,
            CAST((value * 7654321 % 10000000) * 100 AS int),
            DATEADD(SECOND, CAST(value * 37 AS int), DATETIME2FROMPARTS(2024, 1, 1, 0, 0, 0, 0, 7))
        ),
        CASE
            WHEN value % 5 IN (0, 3) THEN NULL
            ELSE CAST(
                DATEADD(
                    DAY,
                    CAST(value % 7 AS int),
                    DATEADD(SECOND, CAST(value * 37 AS int), DATETIME2FROMPARTS(2024, 1, 1, 0, 0, 0, 0, 7))
                )
                AS date
            )
        END,
        CASE
            WHEN value % 97 = 0 THEN CHOOSE(
                1 + (value / 97) % 4,
                N'Bitte vor 10 Uhr liefern – danke!',
                N'Livraison rapide 🚚',
                N'請小心輕放',
                N'Leave at the door'
            )
        END,
        CAST(
            STUFF(STUFF(STUFF(STUFF(
                CONVERT(char(32), HASHBYTES('MD5', CONCAT('order-', value)), 2),
                21, 0, '-'), 17, 0, '-'), 13, 0, '-'), 9, 0, '-')
            AS uniqueidentifier
        )
    FROM GENERATE_SERIES(CAST(1 AS bigint), CAST(120000 AS bigint));
END
GO

-- sales.regions: the double's literal rows, unchanged.
IF NOT EXISTS (SELECT 1 FROM sales.regions)
BEGIN
    INSERT INTO sales.regions (
        region_id, code, name, tax_rate, opens_at, updated_at, budget, score, logo_hash, last_audit
    )
    VALUES
        (1, 'EMEA', N'Europe, Middle East & Africa', 0.2000, '08:30:00.125', '2024-03-01 12:00:00.003',
         1250000.5000, 4.5, 0x00FF10AB, '2024-05-06 07:08:09.1234567 +02:00'),
        (2, 'NA', N'North America', 0.0725, '09:00:00', '2024-03-02 13:14:15.997', 2500000.0000, 3.25,
         NULL, NULL),
        (3, 'LAT', N'América Latina', 0.1600, NULL, NULL, NULL, NULL, 0xCAFE, NULL),
        (4, 'APJ', N'アジア太平洋', 0.1000, '23:59:59.999', '2023-12-31 23:59:59.997', 99.9900, -1.5,
         0xDEADBEEF, NULL),
        (5, 'ANZ', N'Aotearoa 🥝', 0.1500, '00:00:00', '2024-01-01 00:00:00', 0.0001, 0, NULL, NULL);
END
GO

-- Change Data Capture, enabled after the rows are in: the change tables start empty, the seeded rows
-- reach a destination by a full load and later changes by CDC. The capture and cleanup jobs run in
-- SQL Server Agent (MSSQL_AGENT_ENABLED=true in docker-compose.yml).

IF NOT EXISTS (SELECT 1 FROM sys.databases WHERE name = DB_NAME() AND is_cdc_enabled = 1)
BEGIN
    EXEC sys.sp_cdc_enable_db;
END
GO

-- One capture instance per table, named <schema>_<table> (SQL Server's default, spelled out for the
-- specs that name it). No gating role: reading the changes needs SELECT on the table's captured
-- columns, no extra role. Net changes (cdc.fn_cdc_get_net_changes_<instance>) need a primary key,
-- which every table here has.

IF NOT EXISTS (SELECT 1 FROM sys.tables WHERE object_id = OBJECT_ID(N'dbo.customers') AND is_tracked_by_cdc = 1)
BEGIN
    EXEC sys.sp_cdc_enable_table
        @source_schema = N'dbo',
        @source_name = N'customers',
        @capture_instance = N'dbo_customers',
        @role_name = NULL,
        @supports_net_changes = 1;
END
GO

IF NOT EXISTS (SELECT 1 FROM sys.tables WHERE object_id = OBJECT_ID(N'dbo.products') AND is_tracked_by_cdc = 1)
BEGIN
    EXEC sys.sp_cdc_enable_table
        @source_schema = N'dbo',
        @source_name = N'products',
        @capture_instance = N'dbo_products',
        @role_name = NULL,
        @supports_net_changes = 1;
END
GO

IF NOT EXISTS (SELECT 1 FROM sys.tables WHERE object_id = OBJECT_ID(N'dbo.orders') AND is_tracked_by_cdc = 1)
BEGIN
    EXEC sys.sp_cdc_enable_table
        @source_schema = N'dbo',
        @source_name = N'orders',
        @capture_instance = N'dbo_orders',
        @role_name = NULL,
        @supports_net_changes = 1;
END
GO

IF NOT EXISTS (SELECT 1 FROM sys.tables WHERE object_id = OBJECT_ID(N'sales.regions') AND is_tracked_by_cdc = 1)
BEGIN
    EXEC sys.sp_cdc_enable_table
        @source_schema = N'sales',
        @source_name = N'regions',
        @capture_instance = N'sales_regions',
        @role_name = NULL,
        @supports_net_changes = 1;
END
GO

-- The login DTaaS connects with (connection dtaas_mssql): it reads, and nothing else. Its password
-- is the scripting variable DTAAS_READER_PASSWORD, never written in this file.

IF SUSER_ID(N'dtaas_reader') IS NULL
BEGIN
    CREATE LOGIN dtaas_reader WITH PASSWORD = N'$(DTAAS_READER_PASSWORD)', DEFAULT_DATABASE = dtaas_sample;
END
GO

-- On a re-run with a changed .env, follow the new password (PWDCOMPARE is 0 when it differs).
IF PWDCOMPARE(N'$(DTAAS_READER_PASSWORD)', (SELECT password_hash FROM sys.sql_logins WHERE name = N'dtaas_reader')) = 0
BEGIN
    ALTER LOGIN dtaas_reader WITH PASSWORD = N'$(DTAAS_READER_PASSWORD)';
END
GO

IF DATABASE_PRINCIPAL_ID(N'dtaas_reader') IS NULL
BEGIN
    CREATE USER dtaas_reader FOR LOGIN dtaas_reader;
END
GO

-- Read every table and view of the database: the full loads, INFORMATION_SCHEMA (a login sees the
-- metadata of what it may read: columns, primary keys) and OBJECT_ID().
ALTER ROLE db_datareader ADD MEMBER dtaas_reader;
GO

-- Read Change Data Capture: the change functions cdc.fn_cdc_get_all_changes_<instance> and
-- cdc.fn_cdc_get_net_changes_<instance>, and the capture metadata cdc.change_tables,
-- cdc.captured_columns and cdc.lsn_time_mapping (to find a table's capture instances, including the
-- second one after DDL). db_datareader covers these today; the grant states it on its own, so CDC
-- keeps working if db_datareader is replaced by SELECT on the replicated schemas only.
GRANT SELECT ON SCHEMA::cdc TO dtaas_reader;
GO

-- Read sys.dm_db_partition_stats: the row estimate that sizes a table's batches without COUNT(*).
-- Scoped to this database and showing no row data; the view lists the tables the login may read
-- (metadata visibility through db_datareader), so VIEW DEFINITION, which would also show every
-- module's source, is not granted.
GRANT VIEW DATABASE STATE TO dtaas_reader;
GO
