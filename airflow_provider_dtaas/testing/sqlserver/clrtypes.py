"""The CLR types hierarchyid, geography and geometry on the wire: UDTTYPE (0xF0) carrying the type's
assembly name, then the serialized value as PLP bytes (what ``hierarchyid.encode`` and
``spatial.serialize`` produce, and what the double stores). FreeTDS reads them as bytes, so pymssql
returns a raw ``SELECT [g]`` as the serialized ``bytes`` (not WKB, not text), as it does with SQL Server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_dtaas.testing.sqlserver.tokens import b_varchar, us_varchar
from airflow_provider_dtaas.testing.sqlserver.types import PLP_NULL, SqlType, encode_plp

_ASSEMBLY = (
    "Microsoft.SqlServer.Types.{}, Microsoft.SqlServer.Types, Version=11.0.0.0, Culture=neutral, "
    "PublicKeyToken=89845dcd8080cc91"
)
# name -> (CLR class, sys.columns max_length: -1 is unlimited)
_UDTS = {
    "hierarchyid": ("SqlHierarchyId", 892),
    "geography": ("SqlGeography", -1),
    "geometry": ("SqlGeometry", -1),
}
CLR_TYPES = tuple(_UDTS)


@dataclass(frozen=True)
class ClrUdtType(SqlType):
    """UDTTYPE (0xF0): MAX_BYTE_SIZE, database, schema and type names, assembly-qualified name; PLP values."""

    @property
    def character_maximum_length(self) -> int | None:
        return _UDTS[self.name][1]

    @property
    def geography(self) -> bool:
        return self.name == "geography"

    def type_info(self) -> bytes:
        clr_class, max_length = _UDTS[self.name]
        size = 0xFFFF if max_length < 0 else max_length
        return (
            b"\xf0"
            + size.to_bytes(2, "little")
            + b_varchar("")  # the database of the type; system CLR types have none to name
            + b_varchar("sys")
            + b_varchar(self.name)
            + us_varchar(_ASSEMBLY.format(clr_class))
        )

    def encode(self, value: Any) -> bytes:
        if value is None:
            return PLP_NULL
        return encode_plp(bytes(value))
