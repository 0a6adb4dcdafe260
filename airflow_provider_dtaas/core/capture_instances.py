"""Which capture instance a table's changes are read from, and up to where. Pure: no I/O.

SQL Server keeps at most two capture instances per table. After DDL, a DBA creates a second one
(with the new columns) and later drops the first. Both capture the changes made while both exist,
so a reader must not take them from both: it stays on the instance its position is on, reads it
only up to the LSN before the newer instance's ``start_lsn``, and switches once its position has
reached that point. From then on the newer instance's captured columns flow (and whatever schema
change they carry goes through the destination's drift policy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from airflow_provider_dtaas.core.lsn import LSN_BYTES, Lsn, Position

# A position's seqval when every change of its LSN is applied (a whole window or a snapshot).
WHOLE_TRANSACTION = Lsn((1 << (8 * LSN_BYTES)) - 1)


# The columns of a "capture instance" that reads every column of the table as it is now (Change
# Tracking and watermarks join or read the table itself).
EVERY_COLUMN: tuple[str, ...] = ("*",)


class CaptureInstanceError(LookupError):
    """CDC is not enabled for the table, or the capture instance the spec or position names is gone."""


@dataclass(frozen=True)
class CaptureInstance:
    name: str
    start_lsn: Lsn  # what sys.fn_cdc_get_min_lsn returns for it: cleanup moves it up
    columns: tuple[str, ...]  # the captured columns, in order


@dataclass(frozen=True)
class Reading:
    """Read ``instance`` (for the next window) up to ``upper`` at most (None: up to the max LSN)."""

    instance: CaptureInstance
    upper: Lsn | None = None
    switched_from: str | None = None  # the instance the position was on, when this reading switches


def enable_hint(table: str) -> str:
    schema, name = table.split(".", 1)
    return (
        f"EXEC sys.sp_cdc_enable_table @source_schema = N'{schema}', @source_name = N'{name}', "
        "@role_name = NULL (after EXEC sys.sp_cdc_enable_db); see the README's CDC setup"
    )


def choose_instance(
    instances: Sequence[CaptureInstance], *, table: str, saved: Position | None, named: str | None
) -> Reading:
    """The capture instance to read next and its upper bound; see the module docstring.

    ``named`` is the spec's ``cdc.capture_instance``: always read, never switched away from.
    Without a saved position the reading starts on the oldest instance (it holds the most history).
    """
    if not instances:
        raise CaptureInstanceError(
            f"table {table}: change data capture is not enabled for it (cdc.change_tables has no capture "
            f"instance for it). Enable it: {enable_hint(table)}"
        )
    ordered = sorted(instances, key=lambda i: (i.start_lsn, i.name.lower()))
    by_name = {i.name.lower(): i for i in ordered}
    if named is not None:
        if named.lower() not in by_name:
            raise CaptureInstanceError(
                f"table {table}: the spec names capture instance {named}, which does not exist; the table "
                f"has {', '.join(i.name for i in ordered)}. Fix cdc.capture_instance, or drop it to let "
                "DTaaS follow the table's instances"
            )
        return Reading(by_name[named.lower()])
    if saved is None:
        current, switched_from = ordered[0], None
    elif saved.capture_instance.lower() in by_name:
        current, switched_from = by_name[saved.capture_instance.lower()], None
    else:
        # the position's instance was dropped: continue on one that holds the changes after it
        following = [i for i in ordered if i.start_lsn <= saved.lsn.increment()]
        if not following:
            raise CaptureInstanceError(
                f"table {table}: capture instance {saved.capture_instance}, where the saved position "
                f"{saved.lsn} is, was dropped (sys.sp_cdc_disable_table), and the remaining instance(s) "
                f"{', '.join(f'{i.name} from {i.start_lsn}' for i in ordered)} start after it: the changes "
                "in between are lost. Resnapshot the table (gap_policy: resnapshot), and next time drop "
                "the old instance only after DTaaS has switched to the new one"
            )
        current, switched_from = following[-1], saved.capture_instance
    newer = [i for i in ordered if i.start_lsn > current.start_lsn]
    if newer and saved is not None and saved.lsn >= Lsn(newer[0].start_lsn.value - 1):
        # the position has reached the newer instance's start: everything after it is there
        return Reading(newer[0], _cap(newer[1:]), switched_from=current.name)
    return Reading(current, _cap(newer), switched_from=switched_from)


def _cap(newer: Sequence[CaptureInstance]) -> Lsn | None:
    return Lsn(newer[0].start_lsn.value - 1) if newer else None


def snapshot_position(instance: CaptureInstance, *, max_lsn: Lsn) -> Position:
    """Where a table's changes resume after a snapshot that recorded ``max_lsn`` before reading.

    Changes after ``max_lsn`` may already be in the snapshot; applying them again is harmless (the
    MERGE makes each row equal its last change). A capture instance that started after ``max_lsn``
    (just enabled, no change yet) holds nothing before its start, so the position moves there.
    """
    lsn = max(max_lsn, Lsn(max(instance.start_lsn.value - 1, 0)))
    return Position(instance.name, lsn, WHOLE_TRANSACTION)
