"""S3 destination I/O through Airflow's S3Hook: checks, uploads, manifests and clean-up.

Every error a user can fix names the bucket, the object key and the spec field to change.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook

log = logging.getLogger(__name__)

_DENIED = {
    "AccessDenied",
    "403",
    "Forbidden",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
}
_MISSING_BUCKET = {"404", "NoSuchBucket"}


class DestinationBucketError(LookupError):
    """The S3 bucket named in the spec is missing or not reachable with the connection."""


class DestinationAccessError(PermissionError):
    """The connection may not write (or list, or delete) where the spec says to write."""


class DestinationEncryptionError(PermissionError):
    """The KMS key named in the spec is unknown, disabled or not usable by the connection."""


class DtaasS3Hook(S3Hook):
    """S3Hook with the writes DTaaS needs; keys are always given, never invented here.

    :param aws_conn_id: Airflow connection of type ``aws`` (``endpoint_url`` in extra for S3-compatible
        stores such as MinIO).
    """

    hook_name = "DTaaS S3 destination"

    def require_bucket(self, bucket: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.get_conn().head_bucket(Bucket=bucket)
        except ClientError as err:
            code = _code(err)
            reason = "does not exist" if code in _MISSING_BUCKET else f"is not accessible ({code})"
            raise DestinationBucketError(
                f"S3 bucket {bucket!r} {reason} (connection {self.aws_conn_id!r}); "
                "create it or fix destinations.s3.bucket in the spec"
            ) from err
        except BotoCoreError as err:
            raise DestinationBucketError(
                f"cannot reach S3 for bucket {bucket!r} (connection {self.aws_conn_id!r}): {err}"
            ) from err

    def require_kms_key(self, key_id: str) -> None:
        """Fail early on a KMS key that does not exist or is disabled; a principal that may not
        describe keys is let through (the first upload then names the key if it is not usable)."""
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
        from botocore.exceptions import ClientError

        kms = AwsBaseHook(aws_conn_id=self.aws_conn_id, client_type="kms").get_conn()
        try:
            described = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        except ClientError as err:
            code = _code(err)
            if code in ("NotFoundException", "InvalidArnException"):
                raise DestinationEncryptionError(
                    f"KMS key {key_id!r} does not exist (connection {self.aws_conn_id!r}); "
                    "fix destinations.s3.kms_key_id in the spec"
                ) from err
            log.info("cannot describe KMS key %s (%s); checking it with the first upload", key_id, code)
            return
        if not described.get("Enabled", True):
            state = described.get("KeyState", "Disabled")
            remedy = "cancel its deletion" if state == "PendingDeletion" else "enable it"
            raise DestinationEncryptionError(
                f"KMS key {key_id!r} is {state} (connection {self.aws_conn_id!r}); {remedy} or fix "
                "destinations.s3.kms_key_id in the spec"
            )

    def check_writable(self, *, bucket: str, key: str, extra_args: dict[str, Any]) -> None:
        """Write and delete an empty object with the run's settings: access and encryption are
        checked before anything is read from the source."""
        self.guarded(
            lambda: self.get_conn().put_object(Bucket=bucket, Key=key, Body=b"", **extra_args),
            bucket=bucket,
            key=key,
            action="write",
            kms_key_id=extra_args.get("SSEKMSKeyId"),
        )
        self.guarded(
            lambda: self.get_conn().delete_object(Bucket=bucket, Key=key),
            bucket=bucket,
            key=key,
            action="delete",
        )

    def upload_file(
        self,
        path: str,
        *,
        bucket: str,
        key: str,
        extra_args: dict[str, Any],
        threshold_mb: int,
        part_size_mb: int,
        concurrency: int,
    ) -> None:
        """Upload one local file; files above ``threshold_mb`` go in parts of ``part_size_mb``,
        ``concurrency`` at a time. A retried chunk lands on the same key."""
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(
            multipart_threshold=threshold_mb * 1024 * 1024,
            multipart_chunksize=part_size_mb * 1024 * 1024,
            max_concurrency=concurrency,
            use_threads=concurrency > 1,
        )
        self.guarded(
            lambda: self.get_conn().upload_file(path, bucket, key, ExtraArgs=extra_args, Config=config),
            bucket=bucket,
            key=key,
            action="write",
            kms_key_id=extra_args.get("SSEKMSKeyId"),
        )

    def put_json(
        self, document: dict[str, Any], *, bucket: str, key: str, extra_args: dict[str, Any]
    ) -> None:
        body = json.dumps(document, indent=2, sort_keys=True, default=str).encode("utf-8")
        self.guarded(
            lambda: self.get_conn().put_object(
                Bucket=bucket, Key=key, Body=body, ContentType="application/json", **extra_args
            ),
            bucket=bucket,
            key=key,
            action="write",
            kms_key_id=extra_args.get("SSEKMSKeyId"),
        )

    def get_json(self, *, bucket: str, key: str) -> dict[str, Any] | None:
        """The JSON document at ``key``, or None when there is none."""
        from botocore.exceptions import ClientError

        try:
            body = self.get_conn().get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as err:
            if _code(err) in ("NoSuchKey", "404"):
                return None
            raise _destination_error(
                err, bucket=bucket, key=key, action="read", conn_id=self.aws_conn_id
            ) from err
        document = json.loads(body)
        if not isinstance(document, dict):
            raise ValueError(f"s3://{bucket}/{key} is not a JSON object")
        return document

    def delete_prefix(self, *, bucket: str, prefix: str, name_starts: str = "") -> int:
        """Remove every object under ``prefix`` (whose file name starts with ``name_starts``) and
        abort incomplete multipart uploads there; return how many objects and uploads went."""
        client = self.get_conn()
        keys = [
            k
            for k in (self.list_keys(bucket_name=bucket, prefix=prefix) or [])
            if _name(k).startswith(name_starts)
        ]
        if keys:
            self.delete_objects(bucket=bucket, keys=keys)
        aborted = 0
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                if _name(upload["Key"]).startswith(name_starts):
                    client.abort_multipart_upload(
                        Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted += 1
        return len(keys) + aborted

    def guarded(
        self, call: Callable[[], Any], *, bucket: str, key: str, action: str, kms_key_id: str | None = None
    ) -> Any:
        """Run ``call``; an S3 error becomes the destination error that names what to fix (the
        ``kms_key_id`` the call encrypts with, when the key is the problem)."""
        from botocore.exceptions import ClientError

        try:
            return call()
        except ClientError as err:
            raise _destination_error(
                err, bucket=bucket, key=key, action=action, conn_id=self.aws_conn_id, kms_key_id=kms_key_id
            ) from err
        except Exception as err:  # s3transfer wraps the ClientError of a failed part
            cause = err.__cause__ or err.__context__
            if isinstance(cause, ClientError):
                raise _destination_error(
                    cause,
                    bucket=bucket,
                    key=key,
                    action=action,
                    conn_id=self.aws_conn_id,
                    kms_key_id=kms_key_id,
                ) from err
            raise


def _name(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def _code(err: Any) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _destination_error(
    err: Any, *, bucket: str, key: str, action: str, conn_id: str | None, kms_key_id: str | None = None
) -> Exception:
    code = _code(err)
    message = err.response.get("Error", {}).get("Message", "")
    where = f"s3://{bucket}/{key} (connection {conn_id!r})"
    if code.startswith("KMS.") or "kms" in message.lower():
        named = "the KMS key" if kms_key_id is None else f"KMS key {kms_key_id!r}"
        return DestinationEncryptionError(
            f"cannot {action} {where}: {named} is not usable ({code}: {message}); check "
            "destinations.s3.kms_key_id in the spec and the key policy for this connection's principal"
        )
    if code in _MISSING_BUCKET:
        return DestinationBucketError(
            f"cannot {action} {where}: bucket {bucket!r} does not exist; "
            "create it or fix destinations.s3.bucket in the spec"
        )
    if code in _DENIED:
        return DestinationAccessError(
            f"cannot {action} {where}: access denied ({code}); allow s3:PutObject, s3:GetObject, "
            "s3:DeleteObject, s3:ListBucket and s3:AbortMultipartUpload on this bucket and prefix for the "
            "connection's principal, or fix destinations.s3.bucket / prefix in the spec"
        )
    return err if isinstance(err, Exception) else RuntimeError(str(err))
