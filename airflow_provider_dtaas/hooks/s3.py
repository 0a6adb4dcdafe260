"""S3 destination I/O: bucket checks and object writes through Airflow's S3Hook."""

from __future__ import annotations

import json
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook


class DestinationBucketError(LookupError):
    """The S3 bucket named in the spec is missing or not reachable with the connection."""


class DtaasS3Hook(S3Hook):
    """S3Hook with the few writes DTaaS needs; keys are always given, never invented here.

    :param aws_conn_id: Airflow connection of type ``aws`` (``endpoint_url`` in extra for S3-compatible
        stores).
    """

    hook_name = "DTaaS S3 destination"

    def require_bucket(self, bucket: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.get_conn().head_bucket(Bucket=bucket)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            reason = "does not exist" if code in ("404", "NoSuchBucket") else f"is not accessible ({code})"
            raise DestinationBucketError(
                f"S3 bucket {bucket!r} {reason} (connection {self.aws_conn_id!r}); "
                "create it or fix destinations.s3.bucket in the spec"
            ) from err
        except BotoCoreError as err:
            raise DestinationBucketError(
                f"cannot reach S3 for bucket {bucket!r} (connection {self.aws_conn_id!r}): {err}"
            ) from err

    def put_object_bytes(self, data: bytes, *, bucket: str, key: str, metadata: dict[str, str]) -> None:
        """Write (or overwrite) one object; a retried chunk lands on the same key."""
        self.get_conn().put_object(Bucket=bucket, Key=key, Body=data, Metadata=metadata)

    def put_json(self, document: dict[str, Any], *, bucket: str, key: str) -> None:
        body = json.dumps(document, indent=2, sort_keys=True, default=str).encode("utf-8")
        self.get_conn().put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")

    def delete_prefix(self, *, bucket: str, prefix: str) -> int:
        """Remove every object under a prefix (a failed attempt's leftovers); return how many."""
        keys = self.list_keys(bucket_name=bucket, prefix=prefix) or []
        if keys:
            self.delete_objects(bucket=bucket, keys=keys)
        return len(keys)
