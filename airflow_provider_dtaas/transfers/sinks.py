"""Destinations of a full load: each takes Arrow batches chunk by chunk and commits at the end.

A sink's objects are named from (table, run, key chunk, part) only, so a retried attempt overwrites
its own output and never adds to it; a chunk read again after a transient failure first discards what
it wrote (``discard_chunk``); ``commit`` is the single step that makes the load visible.
"""

from __future__ import annotations

import logging
import tempfile
from contextlib import AbstractContextManager, ExitStack
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import pyarrow as pa

from airflow_provider_dtaas import failpoints
from airflow_provider_dtaas.core import snowflake_external as external
from airflow_provider_dtaas.core import snowflake_sql as sql
from airflow_provider_dtaas.core.identifiers import unique_key
from airflow_provider_dtaas.core.plan import SnowflakeTarget
from airflow_provider_dtaas.core.schema_drift import DriftPlan, plan_drift, refuse_case_changes
from airflow_provider_dtaas.core.snowflake_merge import CDC_TARGET_COLUMNS, CHANGE_STAGING_COLUMNS, DELETED
from airflow_provider_dtaas.core.snowflake_names import target_column_names
from airflow_provider_dtaas.core.typemap import VARIANT, MappedColumn
from airflow_provider_dtaas.transfers.stage_files import ChunkFiles, chunk_folder

log = logging.getLogger(__name__)


class RowCountMismatchError(RuntimeError):
    """The destination holds a different number of rows than were read."""


class NotJsonError(ValueError):
    """A column loaded as VARIANT holds text that is not JSON."""


# Columns DTaaS adds to targets and change staging tables: no source column may take their names.
RESERVED_COLUMNS = (
    *sql.METADATA_TYPES,
    *(name for name, _kind in CDC_TARGET_COLUMNS),
    *(name for name, _kind in CHANGE_STAGING_COLUMNS),
)


@dataclass
class SinkResult:
    location: str
    files: int = 0
    bytes_written: int = 0


class Sink(Protocol):
    """One destination of a table load, driven in three steps that may run in different tasks:

    ``prepare`` once per load (clears what an earlier attempt of the run left), then ``open`` /
    ``discard_chunk`` / ``write`` / ``finish_chunk`` / ``close`` in every process that copies chunks
    (``written`` lists the files it wrote), then ``commit`` once with every chunk's files, which makes
    the load visible. The S3 sink is in :mod:`airflow_provider_dtaas.transfers.s3_sink`.
    """

    name: str

    def prepare(self) -> None: ...

    def open(self) -> None: ...

    def write(self, chunk: int, part: int, batch: pa.RecordBatch) -> None: ...

    def finish_chunk(self, chunk: int) -> None: ...

    def discard_chunk(self, chunk: int) -> None: ...

    def written(self) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...

    def commit(self, rows: int, files: list[dict[str, Any]]) -> SinkResult: ...

    def abort(self) -> None: ...


class SnowflakeStageSink:
    """PUT each chunk's files to an internal stage, COPY them into a staging table, then replace the
    target.

    The stage is the spec's named stage, or (``stage_kind: table``) the staging table's own table
    stage: Snowflake loads a table stage only into its own table, so the staging table is created by
    ``prepare`` (before any PUT) and emptied, not replaced, by ``commit``.
    """

    name = "snowflake"
    staging_extra: tuple[tuple[str, str], ...] = ()  # staging columns beyond the table's

    def __init__(
        self,
        target: SnowflakeTarget,
        *,
        hook: Any,
        run_token: str,
        columns: list[MappedColumn],
        run_id: str = "",
        dag_id: str = "",
        source_table: str = "",
    ) -> None:
        self.target = target
        self.hook = hook
        self.columns = columns
        self.target_columns = target_column_names(
            [c.name for c in columns], target.column_case, table=source_table, reserved=RESERVED_COLUMNS
        )
        # per run (DAG and run id): concurrent runs never share one; a retry of the run finds its own
        self.staging = sql.staging_table(target.table, "STAGING", f"{dag_id}|{run_id}")
        self.run_token = run_token
        self.run_id = run_id
        self.source_table = source_table
        self.query_tag = sql.query_tag(dag_id=dag_id, run_id=run_id, table=source_table)
        self.schema_changes: list[dict[str, Any]] = []
        self._stack = ExitStack()
        self._session: Any = None
        self._files: ChunkFiles | None = None
        self._staged: list[dict[str, Any]] = []

    @property
    def location(self) -> str:
        """The stage folder of this load: on the named stage under the table's name, or in the
        staging table's own stage."""
        t = self.target
        if t.stage_kind == "table":
            return sql.table_stage_location(t.database, t.schema, self.staging, self.run_token)
        return sql.stage_location(t.database, t.schema, t.stage, f"{unique_key(t.table)}/{self.run_token}")

    @property
    def target_name(self) -> str:
        """The target table, as the schema history names it."""
        t = self.target
        return f"{t.database}.{t.schema}.{t.table}"

    def _attributed_session(self) -> AbstractContextManager[Any]:
        """A session on the spec's role and warehouse, tagged with DAG, run and table for cost reports."""
        t = self.target
        return self.hook.session(role=t.role, warehouse=t.warehouse, query_tag=self.query_tag)

    def _metadata(self) -> list[tuple[str, str]]:
        t = self.target
        wanted = [(sql.SYNCED_AT, t.synced_at_column), (sql.RUN_ID, t.run_id_column)]
        found = [(name, sql.METADATA_TYPES[name]) for name, on in wanted if on]
        return found + list(CDC_TARGET_COLUMNS) if t.cdc_columns else found

    def prepare(self) -> None:
        """Create what is missing, check an existing target against ``handle_schema_drift`` (a refused
        change fails the load here, before the source is read), drop staging tables that crashed runs
        left, and clear what an earlier attempt of this run left on the stage (it would be loaded).

        The ADD / ALTER COLUMNs the policy allows run at commit, just before the replace
        (:meth:`_evolve_target`), so a load that fails earlier leaves the target's schema as it was.
        """
        t = self.target
        with self._attributed_session() as session:
            session.execute(sql.create_schema_sql(t.database, t.schema))
            self._prepare_stage(session)
            for name in session.drop_stale_staging(t.database, t.schema, t.table):
                log.warning(
                    "Snowflake table %s (run %s): dropped stale staging table %s",
                    self.target_name,
                    self.run_id,
                    name,
                )
            existing = self._existing_columns(session)
            if not existing:
                wanted = [
                    (n, c.snowflake_type) for n, c in zip(self.target_columns, self.columns, strict=True)
                ]
                session.execute(
                    sql.create_table_sql(
                        t.database,
                        t.schema,
                        t.table,
                        wanted + self._metadata(),
                        comments=self._comments(),
                        table_comment=f"Loaded by DTaaS from {self.source_table}",
                    )
                )
                return
        plan, _statements = self._drift(existing)
        self.schema_changes = [asdict(change) for change in plan.changes]
        for change in plan.changes:
            log.warning("Snowflake table %s.%s.%s: %s", t.database, t.schema, t.table, change.describe())

    def _existing_columns(self, session: Any) -> list[tuple[str, str]]:
        t = self.target
        return [
            (str(row["COLUMN_NAME"]), sql.catalog_type(row))
            for row in session.records(sql.target_columns_sql(t.database), (t.schema, t.table))
        ]

    def _drift(self, existing: list[tuple[str, str]]) -> tuple[DriftPlan, list[str]]:
        """This load's drift plan against the target's ``existing`` columns, and the ADD / ALTER
        COLUMN statements it allows; raises :class:`SchemaDriftError` when the policy refuses (or a
        column exists in another case than ``column_case`` gives)."""
        t = self.target
        wanted = [(name, c.snowflake_type) for name, c in zip(self.target_columns, self.columns, strict=True)]
        refuse_case_changes(self.target_name, existing, wanted, t.column_case)
        plan = plan_drift(
            self.target_name,
            existing,
            wanted,
            policy=t.handle_schema_drift,
            reserved=[*sql.METADATA_TYPES, *(name for name, _kind in CDC_TARGET_COLUMNS)],
        )
        present = {name for name, _kind in existing}
        missing = [m for m in self._metadata() if m[0] not in present]
        if t.handle_schema_drift != "evolve":
            # the CDC bookkeeping columns guard every MERGE: added under any drift policy
            missing = [m for m in missing if m in CDC_TARGET_COLUMNS]
        notes = self._comments()
        evolve = t.handle_schema_drift == "evolve"
        statements = [
            sql.add_column_sql(t.database, t.schema, t.table, name, kind, comment=notes.get(name))
            for name, kind in (plan.add if evolve else ()) + tuple(missing)
        ] + [
            sql.alter_column_type_sql(t.database, t.schema, t.table, name, kind)
            for name, kind in (plan.alter if evolve else ())
        ]
        return plan, statements

    def _evolve_target(self, *, op_column: str = "") -> set[str]:
        """Check the staged VARIANT values of the columns the load fills, then run the ADD / ALTER
        COLUMNs the drift policy allows, planned again from the catalog (the commit may run in
        another process than ``prepare``, or retry after they ran); return the target's column
        names as they are now. Snowflake commits DDL at once: a replace that fails after this step
        leaves the new columns (empty) and wider types, never fewer rows."""
        existing = self._existing_columns(self._session)
        plan, statements = self._drift(existing)
        filled = {name for name, _kind in existing} | set(plan.load_columns)
        self._check_json([c for c in self.target_columns if c in filled], op_column=op_column)
        if statements:
            self._session.execute_all(statements)
            existing = self._existing_columns(self._session)
        return {name for name, _kind in existing}

    def _prepare_stage(self, session: Any) -> None:
        """Named stage: create it if missing. Table stage: create the staging table (and so its
        stage) now, before any PUT. Either way, clear this load's folder."""
        t = self.target
        if t.stage_kind == "table":
            session.execute(self._create_staging_sql())
        else:
            session.execute(sql.create_stage_sql(t.database, t.schema, t.stage))
        session.execute(sql.remove_sql(self.location))

    def _create_staging_sql(self) -> str:
        """The staging table: the table's columns (VARIANT ones as their JSON text) and ``staging_extra``."""
        t = self.target
        columns = [
            (name, c.staging_type) for name, c in zip(self.target_columns, self.columns, strict=True)
        ] + list(self.staging_extra)
        return sql.create_table_sql(t.database, t.schema, self.staging, columns, replace=True)

    def _copy_into_staging(self, files: list[dict[str, Any]]) -> None:
        if files:
            t = self.target
            self._session.execute(sql.copy_parquet_sql(t.database, t.schema, self.staging, self.location))

    def _comments(self) -> dict[str, str]:
        """Column comments: the source column and its SQL Server type."""
        return {
            name: f"source {c.source.name} {c.source.declaration()}"
            for name, c in zip(self.target_columns, self.columns, strict=True)
        }

    def open(self) -> None:
        self._session = self._stack.enter_context(self._attributed_session())
        self._files = ChunkFiles(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="dtaas-sf-")))

    def close(self) -> None:
        self._stack.close()
        self._session = None
        self._files = None

    def _chunk_location(self, chunk: int) -> str:
        return f"{self.location}{chunk_folder(chunk)}/"

    def write(self, chunk: int, part: int, batch: pa.RecordBatch) -> None:
        self._write_file(chunk, part, batch.rename_columns(self.target_columns))

    def _write_file(self, chunk: int, part: int, renamed: pa.RecordBatch) -> None:
        """Keep one batch, its columns named as in Snowflake, as a local Parquet file of its chunk."""
        assert self._files is not None, "open() the sink before writing"
        self._staged.append(self._files.add(chunk, part, renamed))

    def finish_chunk(self, chunk: int) -> None:
        """PUT the chunk's files with one statement, ``put_parallel`` at a time, then delete them."""
        assert self._files is not None, "open() the sink before finishing a chunk"
        pattern = self._files.pattern(chunk)
        if pattern is not None:
            put = sql.put_sql(pattern, self._chunk_location(chunk), parallel=self.target.put_parallel)
            self._session.execute(put)
        self._files.clear(chunk)

    def discard_chunk(self, chunk: int) -> None:
        """Remove the chunk's stage folder (what this process and any earlier attempt put there) and
        its local files not yet PUT."""
        self._session.execute(sql.remove_sql(self._chunk_location(chunk)))
        if self._files is not None:
            self._files.clear(chunk)
        self._staged = [f for f in self._staged if f["chunk"] != chunk]

    def written(self) -> list[dict[str, Any]]:
        return list(self._staged)

    def commit(self, rows: int, files: list[dict[str, Any]]) -> SinkResult:
        t = self.target
        # load the columns the target has (freeze leaves new source columns out) and fill metadata
        present = self._stage(files, rows)
        loaded = [c for c in self.target_columns if c in present]
        failpoints.hit("snowflake.before_replace", self.source_table)
        self._session.execute_all(
            sql.replace_rows_sql(
                t.database,
                t.schema,
                t.table,
                self.staging,
                loaded,
                synced_at=t.synced_at_column and sql.SYNCED_AT in present,
                run_id=self.run_id if t.run_id_column and sql.RUN_ID in present else None,
                not_deleted=t.cdc_columns and DELETED in present,
                variant=self.variant_columns,
            )
        )
        self._cleanup()
        self.close()
        return SinkResult(
            location=f"{t.database}.{t.schema}.{t.table}",
            files=len(files),
            bytes_written=sum(int(f["bytes"]) for f in files),
        )

    @property
    def variant_columns(self) -> frozenset[str]:
        """The Snowflake names of the columns stored as VARIANT."""
        return frozenset(
            name
            for name, c in zip(self.target_columns, self.columns, strict=True)
            if c.snowflake_type == VARIANT
        )

    def _check_json(self, loaded: list[str], *, op_column: str = "") -> None:
        """Refuse a load whose VARIANT columns hold text that is not JSON, before the target changes
        (values are counted, never shown)."""
        t = self.target
        for column in (c for c in loaded if c in self.variant_columns):
            count = int(
                self._session.scalar(
                    sql.not_json_count_sql(t.database, t.schema, self.staging, column, op_column=op_column)
                )
            )
            if count:
                raise NotJsonError(
                    f"table {self.source_table}: column {column} is loaded as VARIANT (columns.variant) and "
                    f"{count} of its values are not JSON; the target {t.table} was left as it was. Fix "
                    "the values at the source, or remove the column from columns.variant to load it as text"
                )

    def _stage(self, files: list[dict[str, Any]], rows: int, *, op_column: str = "") -> set[str]:
        """Empty this load's staging table (with a named stage: create it anew; with a table stage it
        holds the files, so it is truncated, which also lets the same files load again), COPY
        ``files`` into it, check it holds ``rows`` (and JSON in its VARIANT columns; ``op_column``:
        change rows only) and evolve the target; return the target's column names as they are then."""
        t = self.target
        if self._session is None:
            self.open()
        if t.stage_kind == "table":
            self._session.execute(sql.truncate_sql(t.database, t.schema, self.staging))
        else:
            self._session.execute(self._create_staging_sql())
        self._copy_into_staging(files)
        staged = int(self._session.scalar(sql.count_sql(t.database, t.schema, self.staging)))
        if staged != rows:
            raise RowCountMismatchError(
                f"Snowflake staging table {t.database}.{t.schema}.{self.staging} holds {staged} rows, "
                f"{rows} were read; the target {t.table} was left as it was"
            )
        return self._evolve_target(op_column=op_column)

    @property
    def _keeps_staging_on_abort(self) -> bool:
        """A table stage lives and dies with its staging table: kept, so a retried commit finds the files."""
        return self.target.stage_kind == "table"

    def abort(self) -> None:
        """Roll back and drop the staging table; staged files stay, so a retried commit (the commit
        task of a chunked load) finds them (with a table stage the staging table holds them and
        stays too). The next load's ``prepare`` clears the stage folder."""
        try:
            if self._session is not None:
                t = self.target
                self._session.execute("ROLLBACK")
                if not self._keeps_staging_on_abort:
                    self._session.execute(sql.drop_table_sql(t.database, t.schema, self.staging))
        except Exception:
            log.warning(
                "could not clean up Snowflake staging objects for %s", self.target.table, exc_info=True
            )
        finally:
            self.close()

    def _cleanup(self) -> None:
        t = self.target
        self._session.execute(sql.remove_sql(self.location))
        self._session.execute(sql.drop_table_sql(t.database, t.schema, self.staging))


class SnowflakeExternalStageSink(SnowflakeStageSink):
    """Load Snowflake from the files the S3 destination of the same load wrote: nothing is PUT; the
    commit COPYs exactly the files its manifest names (through an external stage on the bucket) into
    the staging table, checks the count and replaces the target as the internal-stage load does.

    The S3 sink commits first; ``manifest`` is set from it before ``commit``.
    """

    def __init__(self, target: SnowflakeTarget, *, bucket: str, **kwargs: Any) -> None:
        super().__init__(target, **kwargs)
        self.bucket = bucket
        self.manifest: dict[str, Any] | None = None

    def _prepare_stage(self, session: Any) -> None:
        t = self.target
        assert t.external_stage is not None
        if t.storage_integration is not None:
            session.execute(
                external.create_external_stage_sql(
                    t.database,
                    t.schema,
                    t.external_stage,
                    url=f"s3://{self.bucket}/{t.external_stage_prefix}",
                    storage_integration=t.storage_integration,
                )
            )

    def write(self, chunk: int, part: int, batch: pa.RecordBatch) -> None:
        """Nothing to write: the S3 destination writes the files."""

    def finish_chunk(self, chunk: int) -> None:
        """Nothing to upload: the S3 destination wrote the files."""

    def discard_chunk(self, chunk: int) -> None:
        """Nothing staged here to discard."""

    def _copy_into_staging(self, files: list[dict[str, Any]]) -> None:
        t = self.target
        assert t.external_stage is not None
        if self.manifest is None:
            raise RuntimeError(
                f"table {self.source_table}: load_from s3 needs the S3 destination's manifest, and none was "
                "committed in this load"
            )
        statements = external.copy_from_manifest_sql(
            t.database,
            t.schema,
            self.staging,
            stage=t.external_stage,
            stage_prefix=t.external_stage_prefix,
            manifest=self.manifest,
            columns=self.target_columns,
            csv_delimiter=self.manifest.get("csv", {}).get("delimiter"),
            csv_header=bool(self.manifest.get("csv", {}).get("header", True)),
        )
        self._session.execute_all(["BEGIN", *statements, "COMMIT"])

    def _cleanup(self) -> None:
        t = self.target
        self._session.execute(sql.drop_table_sql(t.database, t.schema, self.staging))
