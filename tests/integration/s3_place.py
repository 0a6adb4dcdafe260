"""Where an S3 destination test writes: a connection, a bucket and a key prefix of its own."""

from __future__ import annotations

from dataclasses import dataclass

REAL_S3_ENV = "DTAAS_TEST_S3_CONN"
REAL_S3_BUCKET_ENV = "DTAAS_TEST_S3_BUCKET"


@dataclass(frozen=True)
class S3Place:
    conn_id: str
    bucket: str
    prefix: str  # "" for a bucket of the test's own; a unique folder in a shared real bucket
