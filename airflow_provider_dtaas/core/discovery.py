"""Which source tables a spec's patterns select. Pure: the list of tables comes from the hook."""

from __future__ import annotations

from fnmatch import fnmatchcase

from airflow_provider_dtaas.core.spec import TablePatterns


def match_tables(
    available: list[tuple[str, str]], patterns: TablePatterns, *, listed: set[str]
) -> list[tuple[str, str]]:
    """Tables matching an include pattern and no exclude pattern, minus the listed ones, sorted."""

    def matches(name: str, globs: list[str]) -> bool:
        return any(fnmatchcase(name.lower(), glob.lower()) for glob in globs)

    listed_lower = {name.lower() for name in listed}
    chosen = [
        (schema, table)
        for schema, table in available
        if matches(f"{schema}.{table}", patterns.include)
        and not matches(f"{schema}.{table}", patterns.exclude)
        and f"{schema}.{table}".lower() not in listed_lower
    ]
    return sorted(chosen, key=lambda t: (t[0].lower(), t[1].lower()))
