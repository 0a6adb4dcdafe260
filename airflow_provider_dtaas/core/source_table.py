"""What the source catalog says about one table, and the key DTaaS reads it by. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field

from airflow_provider_dtaas.core.typemap import SourceColumn


class KeyChoiceError(LookupError):
    """The spec names key columns the table does not have (or that may hold NULL)."""


@dataclass(frozen=True)
class SourceTable:
    schema: str
    table: str
    columns: list[SourceColumn]
    primary_key: list[str] = field(default_factory=list)
    unique_keys: dict[str, list[str]] = field(default_factory=dict)  # index name -> columns in order
    estimated_rows: int | None = None
    size_mb: float | None = None
    cdc_enabled: bool = False
    change_tracking_enabled: bool = False

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def computed_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.computed]

    def read_key(self, override: tuple[str, ...] | None = None) -> list[str]:
        """The columns to order and chunk by: the spec's, the primary key, or a unique index whose
        columns cannot be NULL; empty for a heap, which is read in one streamed pass."""
        by_name = {c.name.lower(): c for c in self.columns}
        if override:
            missing = [n for n in override if n.lower() not in by_name]
            if missing:
                raise KeyChoiceError(
                    f"table {self.name}: primary_key names {', '.join(missing)}, which the table does not "
                    f"have; its columns are {', '.join(c.name for c in self.columns)}"
                )
            nullable = [n for n in override if by_name[n.lower()].nullable]
            if nullable:
                raise KeyChoiceError(
                    f"table {self.name}: primary_key column {', '.join(nullable)} allows NULL, so it cannot "
                    "order the rows of a chunked read; name NOT NULL columns that identify a row"
                )
            return [by_name[n.lower()].name for n in override]
        if self.primary_key:
            return list(self.primary_key)
        for _name, columns in sorted(self.unique_keys.items()):
            if columns and all(not by_name[c.lower()].nullable for c in columns if c.lower() in by_name):
                return list(columns)
        return []
