"""SQL Server log sequence numbers (LSNs) and CDC windows. Pure: no I/O.

An LSN is 10 bytes that order as a big-endian number; SQL Server prints it as ``0x`` and 20 hex
digits. A table's CDC position is (capture instance, LSN, seqval) of the last change applied. The
next window is ``(position, max]`` — read as ``[increment(position), max]`` because
``cdc.fn_cdc_get_all_changes_*`` takes inclusive bounds and raises Msg 313 when the lower bound is
above the upper one, so an empty window is never queried. A position below the capture instance's
minimum LSN means changes were cleaned up before they were read: a retention gap.
"""

from __future__ import annotations

from dataclasses import dataclass

LSN_BYTES = 10
_MAX = (1 << (8 * LSN_BYTES)) - 1


class LsnError(ValueError):
    """Text or bytes that are not an LSN."""


@dataclass(frozen=True, order=True)
class Lsn:
    """One LSN; instances order as SQL Server orders them."""

    value: int

    def __post_init__(self) -> None:
        if not 0 <= self.value <= _MAX:
            raise LsnError(f"an LSN holds {LSN_BYTES} bytes; {self.value} does not fit")

    @classmethod
    def from_bytes(cls, raw: bytes | bytearray | memoryview) -> Lsn:
        data = bytes(raw)
        if len(data) != LSN_BYTES:
            raise LsnError(f"an LSN is {LSN_BYTES} bytes, got {len(data)}: {data.hex()}")
        return cls(int.from_bytes(data, "big"))

    @classmethod
    def parse(cls, text: str) -> Lsn:
        """``0x0000002A000001F00003`` (as SQL Server prints it; ``0x`` and case optional)."""
        digits = text.strip().lower().removeprefix("0x")
        if len(digits) != 2 * LSN_BYTES or any(c not in "0123456789abcdef" for c in digits):
            raise LsnError(f"{text!r} is not an LSN: expected 0x and {2 * LSN_BYTES} hex digits")
        return cls(int(digits, 16))

    def to_bytes(self) -> bytes:
        return self.value.to_bytes(LSN_BYTES, "big")

    def hex(self) -> str:
        return "0x" + self.to_bytes().hex().upper()

    def to_parameter(self) -> bytearray:
        """The LSN as a bound query parameter: pymssql sends ``bytes`` that happen to decode as UTF-8
        as text, but a ``bytearray`` always as binary (see the driver facts in the design notes)."""
        return bytearray(self.to_bytes())

    def increment(self) -> Lsn:
        """The next possible LSN, as ``sys.fn_cdc_increment_lsn`` (which adds one)."""
        return Lsn(self.value + 1)

    def __str__(self) -> str:
        return self.hex()


ZERO = Lsn(0)


@dataclass(frozen=True)
class Position:
    """Where a table's CDC stands: the last change applied to every destination."""

    capture_instance: str
    lsn: Lsn
    seqval: Lsn

    def to_json(self) -> dict[str, str]:
        return {"capture_instance": self.capture_instance, "lsn": self.lsn.hex(), "seqval": self.seqval.hex()}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> Position:
        return cls(data["capture_instance"], Lsn.parse(data["lsn"]), Lsn.parse(data["seqval"]))


@dataclass(frozen=True)
class Window:
    """Changes to read: ``[from_lsn, to_lsn]`` inclusive, as the CDC functions take them."""

    from_lsn: Lsn
    to_lsn: Lsn


class RetentionGapError(RuntimeError):
    """The saved position lies below the capture instance's minimum LSN: changes were cleaned up."""


def next_window(
    saved: Lsn | None, *, min_lsn: Lsn, max_lsn: Lsn, capture_instance: str, table: str
) -> Window | None:
    """The window after ``saved`` up to ``max_lsn``, or None when there is nothing new.

    ``saved`` None starts at the capture instance's minimum (all changes still held). A saved LSN
    below ``min_lsn`` - 1 means changes after it were removed by cleanup before they were applied:
    :class:`RetentionGapError`, which names table, both LSNs and the ways out.
    """
    if min_lsn == ZERO:
        raise RetentionGapError(
            f"table {table}: capture instance {capture_instance} does not exist or holds no changes "
            "(sys.fn_cdc_get_min_lsn returned 0x00000000000000000000); check that CDC is enabled for "
            "the table (sys.sp_cdc_enable_table) and that the spec names the right capture_instance"
        )
    if saved is not None and saved > max(max_lsn, Lsn(min_lsn.value - 1)):
        raise RetentionGapError(
            f"table {table}: the saved CDC position {saved} is ahead of the newest change SQL Server "
            f"holds ({max_lsn}, capture instance {capture_instance} from {min_lsn}): the database was "
            "restored or recreated since DTaaS saved it, so the changes it stands for are not these. "
            "Resnapshot the table (gap_policy: resnapshot, or trigger a run with resnapshot)"
        )
    start = min_lsn if saved is None else saved.increment()
    if start < min_lsn:
        assert saved is not None
        raise RetentionGapError(
            f"table {table}: the saved CDC position {saved} is older than the oldest change capture "
            f"instance {capture_instance} still holds ({min_lsn}); changes in between were removed by "
            "the CDC cleanup job before DTaaS read them. Resnapshot the table (gap_policy: resnapshot, "
            "or trigger a run with resnapshot), and raise the retention (sys.sp_cdc_change_job "
            "@retention) above the longest pause between runs"
        )
    if start > max_lsn:
        return None
    return Window(start, max_lsn)
